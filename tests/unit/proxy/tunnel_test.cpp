#include "proxy/tunnel.hpp"
#include "support/loopback.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <csignal>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>

using problemgate::http1::DeadlineSocket;
using problemgate::obs::TunnelClose;
using problemgate::proxy::run_tunnel;
using problemgate::proxy::TunnelLimits;
using problemgate::proxy::TunnelLink;
using problemgate::proxy::TunnelResult;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

/// client-app <-> [client | upstream] <-> origin-app, as the proxy has them. The app ends are
/// blocking sockets driven by the test's threads; the tunnel runs on the io_context.
struct Tunnel {
  net::io_context ioc;
  tcp::acceptor acceptor = problemgate::test::loopback_acceptor(ioc);
  tcp::socket client_app{ioc}, origin_app{ioc};
  std::optional<DeadlineSocket> client, upstream;
  boost::beast::flat_buffer from_client, from_upstream;
  TunnelLink link;

  Tunnel() {
    std::signal(SIGPIPE, SIG_IGN);
    auto [ca, c] = problemgate::test::loopback_pair(ioc, acceptor);
    auto [u, o] = problemgate::test::loopback_pair(ioc, acceptor);
    client_app = std::move(ca);
    origin_app = std::move(o);
    client.emplace(std::move(c));
    upstream.emplace(std::move(u));
  }

  TunnelResult run(TunnelLimits limits = {10s, 10s}) {
    std::optional<TunnelResult> out;
    net::co_spawn(
        ioc,
        [&]() -> net::awaitable<void> {
          out = co_await run_tunnel(*client, *upstream, from_client, from_upstream, limits, link);
        },
        net::detached);
    ioc.run();
    REQUIRE(out.has_value());
    return *out;
  }
};

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

/// Reads until end of stream (or an error).
std::string read_all(tcp::socket& s) {
  std::string out;
  char buf[65536];
  boost::system::error_code ec;
  for (;;) {
    const std::size_t n = s.read_some(net::buffer(buf), ec);
    if (ec) return out;
    out.append(buf, n);
  }
}

void put(boost::beast::flat_buffer& b, std::string_view s) {
  auto dst = b.prepare(s.size());
  std::memcpy(dst.data(), s.data(), s.size());
  b.commit(s.size());
}

}  // namespace

TEST_SUITE("proxy.tunnel") {
  TEST_CASE("bytes both ways, pending bytes first, half-closes passed on") {
    Tunnel t;
    put(t.from_client, "early-client|");
    put(t.from_upstream, "early-origin|");
    const std::string up = random_bytes(2 * 1024 * 1024 + 3, 1);
    const std::string down = random_bytes(1024 * 1024 + 5, 2);
    std::string got_at_origin, got_at_client;
    std::thread origin([&] {
      net::write(t.origin_app, net::buffer(down));
      t.origin_app.shutdown(tcp::socket::shutdown_send);  // origin done sending; still reads
      got_at_origin = read_all(t.origin_app);             // until the client's half-close arrives
    });
    std::thread client([&] {
      std::thread reader([&] { got_at_client = read_all(t.client_app); });
      net::write(t.client_app, net::buffer(up));
      t.client_app.shutdown(tcp::socket::shutdown_send);
      reader.join();
    });
    const TunnelResult r = t.run();
    origin.join();
    client.join();
    CHECK(got_at_origin == "early-client|" + up);
    CHECK(got_at_client == "early-origin|" + down);
    CHECK(r.bytes_up == got_at_origin.size());
    CHECK(r.bytes_down == got_at_client.size());
    CHECK((r.reason == TunnelClose::client_closed || r.reason == TunnelClose::upstream_closed));
    CHECK(t.from_client.size() == 0);
    CHECK(t.from_upstream.size() == 0);
  }

  TEST_CASE("a reset upstream ends both directions") {
    Tunnel t;
    std::thread origin([&] {
      char b[5];
      net::read(t.origin_app, net::buffer(b));
      t.origin_app.set_option(net::socket_base::linger(true, 0));  // close with RST
      t.origin_app.close();
    });
    std::string at_client;
    std::thread client([&] {
      net::write(t.client_app, net::buffer("hello", 5));
      at_client =
          read_all(t.client_app);  // the tunnel's end reaches the client (it is closed after)
    });
    const TunnelResult r = t.run();
    origin.join();
    t.client->socket().close();  // what the session does next
    client.join();
    CHECK(r.reason == TunnelClose::upstream_closed);
    CHECK(r.bytes_up == 5);
  }

  TEST_CASE("no byte either way for the idle timeout: closed, reason idle_timeout") {
    Tunnel t;
    const auto start = std::chrono::steady_clock::now();
    const TunnelResult r = t.run({200ms, 10s});
    CHECK(r.reason == TunnelClose::idle_timeout);
    CHECK(std::chrono::steady_clock::now() - start >= 200ms);
    CHECK(r.bytes_up == 0);
  }

  TEST_CASE("a reader that stops reading: closed after the write timeout") {
    Tunnel t;
    // The origin floods; the client app never reads, so writes to it stop making progress.
    std::thread origin([&] {
      const std::string chunk(256 * 1024, 'x');
      boost::system::error_code ec;
      while (!ec) net::write(t.origin_app, net::buffer(chunk), ec);
    });
    const TunnelResult r = t.run({10s, 300ms});
    t.upstream->socket().close();  // unread bytes: a reset, which ends the origin's write
    origin.join();
    CHECK(r.reason == TunnelClose::write_timeout);
    CHECK(r.bytes_down > 0);
  }

  TEST_CASE("a stop request (drain) ends a busy tunnel") {
    Tunnel t;
    t.link.request_stop();  // before the tunnel runs: it stops at once
    const TunnelResult r = t.run();
    CHECK(r.reason == TunnelClose::drain);
  }
}
