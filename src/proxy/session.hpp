#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace problemgate::proxy {

class Worker;
struct ListenerInfo;

/// Serves one client connection: the keep-alive loop of read head -> checks -> route -> rate
/// limit -> forward -> relay or normalize -> log. Never throws for network input. A TLS
/// listener's connection starts with the handshake (within its handshake_timeout).
boost::asio::awaitable<void> run_session(Worker& worker, boost::asio::ip::tcp::socket socket,
                                         const ListenerInfo& listener);

}  // namespace problemgate::proxy
