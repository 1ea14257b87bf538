#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <string>

namespace problemgate::proxy {

/// "127.0.0.1:8080", "[::1]:8080": an address as an operator writes it.
std::string endpoint_text(const boost::asio::ip::tcp::endpoint& ep);

/// The address to listen on for `host` (an IP literal, or a name resolved once at start-up), or
/// std::runtime_error naming it ("listen nosuchhost:8080: cannot resolve nosuchhost: ...").
boost::asio::ip::address listen_address(boost::asio::io_context& ctx, const std::string& host,
                                        unsigned short port);

enum class ListenerKind {
  single,           // one socket owns the address (the admin listener)
  first_of_group,   // the first worker's: checks that no other process listens there
  member_of_group,  // another worker's, on the port the first one got
};

/// A listening acceptor on `ep`, or std::runtime_error naming the address and the reason
/// ("listen 127.0.0.1:8080: address already in use (another socket listens there)").
///
/// The workers' listeners share one port through SO_REUSEPORT. The kernel would let a second
/// gateway started by the same user join that group just as silently, and take a share of the
/// connections with whatever config it was started with. So before the first member binds, a
/// probe socket without SO_REUSEPORT is bound to the address: it conflicts with any socket
/// listening there, ours or not, and a second instance fails at start-up as it would under
/// nginx. SO_REUSEADDR on the probe keeps a previous run's TIME_WAIT connections out of the way.
boost::asio::ip::tcp::acceptor open_listener(boost::asio::io_context& ctx,
                                             const boost::asio::ip::tcp::endpoint& ep,
                                             ListenerKind kind);

}  // namespace problemgate::proxy
