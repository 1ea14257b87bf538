#include "problemgate/http1/splice_relay.hpp"
#include "support/loopback.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <csignal>
#include <optional>
#include <random>
#include <string>
#include <thread>

using problemgate::http1::DeadlineSocket;
using problemgate::http1::Pipe;
using problemgate::http1::PipePool;
using problemgate::http1::splice_body;
using problemgate::http1::SpliceOutcome;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

/// Two loopback connections, as the proxy has them: origin -> [from | to] -> client. The origin
/// and client ends are plain blocking sockets driven by the test's own threads.
struct Relay {
  net::io_context ioc;
  tcp::acceptor acceptor = problemgate::test::loopback_acceptor(ioc);
  tcp::socket origin{ioc}, client{ioc};
  std::optional<DeadlineSocket> from, to;

  Relay() {
    std::signal(SIGPIPE, SIG_IGN);  // as main() does: a write to a closed peer is an error code
    auto [a, o] = problemgate::test::loopback_pair(ioc, acceptor);
    auto [b, c] = problemgate::test::loopback_pair(ioc, acceptor);
    origin = std::move(o);
    client = std::move(c);
    a.non_blocking(true);
    b.non_blocking(true);
    from.emplace(std::move(a));
    to.emplace(std::move(b));
  }

  /// Runs splice_body to completion on this thread.
  SpliceOutcome run(Pipe& pipe, std::uint64_t& left, std::chrono::milliseconds read_timeout = 10s,
                    std::chrono::milliseconds write_timeout = 10s) {
    std::optional<SpliceOutcome> out;
    net::co_spawn(
        ioc,
        [&]() -> net::awaitable<void> {
          out = co_await splice_body(*from, read_timeout, *to, write_timeout, pipe, left);
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

}  // namespace

TEST_SUITE("splice_body") {
  TEST_CASE("moves exactly the announced bytes, and not one byte past them") {
    Relay r;
    const std::string body = random_bytes(3 * 1024 * 1024 + 7, 1);
    const std::string next = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison";
    std::thread origin([&] { net::write(r.origin, net::buffer(body + next)); });
    std::string got(body.size(), '\0');
    std::thread client([&] { net::read(r.client, net::buffer(got)); });
    Pipe pipe = Pipe::open(PipePool::kCapacity);
    REQUIRE(pipe.valid());
    std::uint64_t left = body.size();
    const SpliceOutcome out = r.run(pipe, left);
    origin.join();
    client.join();
    CHECK(out.from_ok);
    CHECK(out.to_ok);
    CHECK(left == 0);
    CHECK(pipe.held == 0);
    CHECK(out.bytes_out == body.size());
    CHECK(got == body);
    // What followed the body is still in the socket, for the pool's check to find.
    r.from->socket().non_blocking(false);
    std::string rest(next.size(), '\0');
    net::read(r.from->socket(), net::buffer(rest));
    CHECK(rest == next);
  }

  TEST_CASE("an origin that closes before the announced length: from_ok is false") {
    Relay r;
    const std::string half = random_bytes(500 * 1024, 2);
    std::thread origin([&] {
      net::write(r.origin, net::buffer(half));
      r.origin.shutdown(tcp::socket::shutdown_both);
    });
    std::string got;
    std::thread client([&] {
      char buf[65536];
      boost::system::error_code ec;
      for (;;) {
        const std::size_t n = r.client.read_some(net::buffer(buf), ec);
        if (ec) break;
        got.append(buf, n);
        if (got.size() >= half.size()) break;
      }
    });
    Pipe pipe = Pipe::open(PipePool::kCapacity);
    std::uint64_t left = 1024 * 1024;
    const SpliceOutcome out = r.run(pipe, left);
    origin.join();
    client.join();
    CHECK_FALSE(out.from_ok);
    CHECK(left == 1024 * 1024 - half.size());
    CHECK(got == half);  // what came was delivered, nothing was made up
  }

  TEST_CASE("an origin that stalls: the read deadline ends it") {
    Relay r;
    net::write(r.origin, net::buffer(std::string(1000, 'x')));
    std::thread client([&] {
      std::string got(1000, '\0');
      net::read(r.client, net::buffer(got));
    });
    Pipe pipe = Pipe::open(PipePool::kCapacity);
    std::uint64_t left = 5000;
    const auto t0 = std::chrono::steady_clock::now();
    const SpliceOutcome out = r.run(pipe, left, 200ms);
    client.join();
    CHECK_FALSE(out.from_ok);
    CHECK(r.from->timed_out());
    CHECK(left == 4000);
    CHECK(std::chrono::steady_clock::now() - t0 >= 200ms);
  }

  TEST_CASE("a client that reads nothing: the write deadline ends it, the pipe is not reusable") {
    Relay r;
    r.client.set_option(net::socket_base::receive_buffer_size(4096));
    const std::string body = random_bytes(16 * 1024 * 1024, 3);
    std::thread origin([&] {
      boost::system::error_code ec;
      net::write(r.origin, net::buffer(body), ec);  // ends when the test closes the socket
    });
    Pipe pipe = Pipe::open(PipePool::kCapacity);
    std::uint64_t left = body.size();
    const SpliceOutcome out = r.run(pipe, left, 10s, 200ms);
    CHECK_FALSE(out.to_ok);
    CHECK(r.to->timed_out());
    CHECK(left > 0);
    CHECK(pipe.held > 0);
    PipePool pool;
    pool.give(std::move(pipe));
    CHECK(pool.idle() == 0);  // holding bytes: closed, never handed to the next relay
    r.origin.shutdown(tcp::socket::shutdown_both);  // wakes the blocked writer (close would not)
    origin.join();
  }

  TEST_CASE("a client that closes: to_ok is false, no signal kills the process") {
    Relay r;
    const std::string body = random_bytes(8 * 1024 * 1024, 4);
    std::thread origin([&] {
      boost::system::error_code ec;
      net::write(r.origin, net::buffer(body), ec);
    });
    r.client.close();
    Pipe pipe = Pipe::open(PipePool::kCapacity);
    std::uint64_t left = body.size();
    const SpliceOutcome out = r.run(pipe, left);
    CHECK_FALSE(out.to_ok);
    r.origin.shutdown(tcp::socket::shutdown_both);
    origin.join();
  }
}

TEST_CASE("PipePool keeps empty pipes for reuse, up to its bound") {
  PipePool pool;
  Pipe a = pool.take();
  REQUIRE(a.valid());
  CHECK(a.capacity() >= 4096);
  const int fd = a.read_fd();
  pool.give(std::move(a));
  CHECK(pool.idle() == 1);
  Pipe b = pool.take();
  CHECK(b.read_fd() == fd);  // the same pipe again: no pipe2 per response
  CHECK(pool.idle() == 0);
  std::vector<Pipe> many;
  for (std::size_t i = 0; i < PipePool::kMaxIdle + 4; ++i) many.push_back(pool.take());
  for (auto& p : many) pool.give(std::move(p));
  CHECK(pool.idle() == PipePool::kMaxIdle);
}
