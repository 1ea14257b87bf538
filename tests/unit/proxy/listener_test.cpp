#include "proxy/listener.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <stdexcept>
#include <string>

#include <sys/socket.h>

using problemgate::proxy::endpoint_text;
using problemgate::proxy::listen_address;
using problemgate::proxy::ListenerKind;
using problemgate::proxy::open_listener;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

std::string failure_of(net::io_context& ctx, const tcp::endpoint& ep, ListenerKind kind) {
  try {
    open_listener(ctx, ep, kind);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

const auto kLoopback = net::ip::make_address("127.0.0.1");

}  // namespace

TEST_SUITE("listener") {
  TEST_CASE("the workers of one group share a port; the first checks nobody else listens there") {
    net::io_context ctx;
    auto first = open_listener(ctx, tcp::endpoint(kLoopback, 0), ListenerKind::first_of_group);
    const tcp::endpoint ep(kLoopback, first.local_endpoint().port());
    auto second = open_listener(ctx, ep, ListenerKind::member_of_group);
    CHECK(second.local_endpoint() == ep);
    // A new group on the same address (a second gateway) is refused, naming the address.
    CHECK(failure_of(ctx, ep, ListenerKind::first_of_group) ==
          "listen " + endpoint_text(ep) +
              ": address already in use (another socket listens there)");
  }

  TEST_CASE("a foreign listener that set SO_REUSEPORT is not joined") {
    net::io_context ctx;
    tcp::acceptor other(ctx, tcp::v4());
    other.set_option(net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
    other.bind(tcp::endpoint(kLoopback, 0));
    other.listen();
    const auto ep = other.local_endpoint();
    CHECK(failure_of(ctx, ep, ListenerKind::first_of_group).find("address already in use") !=
          std::string::npos);
    CHECK(failure_of(ctx, ep, ListenerKind::single).find("address already in use") !=
          std::string::npos);
  }

  TEST_CASE("connections left in TIME_WAIT by a previous run do not block a restart") {
    net::io_context ctx;
    tcp::endpoint ep;
    {
      auto listener = open_listener(ctx, tcp::endpoint(kLoopback, 0), ListenerKind::first_of_group);
      ep = listener.local_endpoint();
      tcp::socket client(ctx);
      client.connect(ep);
      tcp::socket served(ctx);
      listener.accept(served);
      served.close();  // the server side closes first: its end goes to TIME_WAIT
      char byte;
      boost::system::error_code ec;
      client.read_some(net::buffer(&byte, 1), ec);
      CHECK(ec == net::error::eof);
    }
    auto again = open_listener(ctx, ep, ListenerKind::first_of_group);
    CHECK(again.local_endpoint() == ep);
  }

  TEST_CASE("addresses are written as an operator writes them") {
    CHECK(endpoint_text(tcp::endpoint(kLoopback, 8080)) == "127.0.0.1:8080");
    CHECK(endpoint_text(tcp::endpoint(net::ip::make_address("::1"), 8080)) == "[::1]:8080");
  }

  TEST_CASE("a literal listen address is taken as it is") {
    net::io_context ctx;
    CHECK(listen_address(ctx, "127.0.0.1", 80) == kLoopback);
    CHECK(listen_address(ctx, "::1", 80) == net::ip::make_address("::1"));
  }
}
