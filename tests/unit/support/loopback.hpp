#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <utility>

namespace problemgate::test {

/// A connected TCP pair on 127.0.0.1 through `acceptor`: {the connecting side, the accepted
/// side}. Blocking connect and accept: the kernel completes the handshake before accept().
inline std::pair<boost::asio::ip::tcp::socket, boost::asio::ip::tcp::socket> loopback_pair(
    boost::asio::io_context& ioc, boost::asio::ip::tcp::acceptor& acceptor) {
  boost::asio::ip::tcp::socket a(ioc), b(ioc);
  a.connect(acceptor.local_endpoint());
  acceptor.accept(b);
  return {std::move(a), std::move(b)};
}

/// An acceptor on an ephemeral 127.0.0.1 port.
inline boost::asio::ip::tcp::acceptor loopback_acceptor(boost::asio::io_context& ioc) {
  return {ioc, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)};
}

}  // namespace problemgate::test
