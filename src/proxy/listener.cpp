#include "proxy/listener.hpp"

#include <boost/asio/error.hpp>
#include <boost/system/errc.hpp>

#include <stdexcept>

#include <sys/socket.h>

namespace problemgate::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string endpoint_text(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  std::string text;
  if (addr.is_v6()) text += '[';
  text += addr.to_string();
  if (addr.is_v6()) text += ']';
  text += ':';
  text += std::to_string(ep.port());
  return text;
}

namespace {

[[noreturn]] void fail(const tcp::endpoint& ep, const boost::system::error_code& ec) {
  std::string why = ec.message();
  if (ec == net::error::address_in_use)
    why = "address already in use (another socket listens there)";
  if (ec == net::error::access_denied)
    why = "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)";
  if (ec == boost::system::errc::address_not_available)
    why = "address not available (no local interface has it)";
  throw std::runtime_error("listen " + endpoint_text(ep) + ": " + why);
}

}  // namespace

net::ip::address listen_address(net::io_context& ctx, const std::string& host,
                                unsigned short port) {
  boost::system::error_code ec;
  auto addr = net::ip::make_address(host, ec);
  if (!ec) return addr;
  tcp::resolver resolver(ctx);
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty()) {
    throw std::runtime_error("listen " + host + ":" + std::to_string(port) + ": cannot resolve " +
                             host + (ec ? ": " + ec.message() : std::string()));
  }
  return results.begin()->endpoint().address();
}

tcp::acceptor open_listener(net::io_context& ctx, const tcp::endpoint& ep, ListenerKind kind) {
  boost::system::error_code ec;
  if (kind == ListenerKind::first_of_group && ep.port() != 0) {
    tcp::acceptor probe(ctx);
    probe.open(ep.protocol(), ec);
    if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) probe.bind(ep, ec);
    if (ec) fail(ep, ec);
  }
  tcp::acceptor acceptor(ctx);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && kind != ListenerKind::single) {
    using reuse_port = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
    acceptor.set_option(reuse_port(true), ec);
  }
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail(ep, ec);
  return acceptor;
}

}  // namespace problemgate::proxy
