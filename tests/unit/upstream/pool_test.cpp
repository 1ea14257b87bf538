#include "problemgate/upstream/pool.hpp"
#include "support/loopback.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>

using problemgate::config::Duration;
using problemgate::upstream::AcquireError;
using problemgate::upstream::Connection;
using problemgate::upstream::UpstreamPool;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

/// Lets bytes or a FIN sent on loopback reach the other socket's receive queue.
void settle() { std::this_thread::sleep_for(30ms); }

/// A pool for an upstream that is a loopback acceptor; each new connection's accepted side is
/// kept as `peer`, so a test can close it or write stray bytes while the connection is idle.
struct PoolFixture {
  net::io_context ioc;
  tcp::acceptor acceptor = problemgate::test::loopback_acceptor(ioc);
  std::optional<UpstreamPool> pool;
  tcp::socket peer{ioc};

  explicit PoolFixture(Duration reuse_check_after) {
    problemgate::config::Upstream u;
    u.name = "test";
    u.host = "127.0.0.1";
    u.port = acceptor.local_endpoint().port();
    u.reuse_check_after = reuse_check_after;
    pool.emplace(ioc.get_executor(), u);
  }

  /// A new pooled connection (through UpstreamPool::connect, as the forwarder gets one).
  std::unique_ptr<Connection> connect() {
    auto fut = net::co_spawn(ioc, pool->connect(), net::use_future);
    // Not ioc.run(): the connection's deadline timer stays queued (it is re-armed lazily).
    while (fut.wait_for(0s) != std::future_status::ready) ioc.run_one_for(10ms);
    auto acquired = fut.get();
    REQUIRE(acquired.error == AcquireError::none);
    peer = tcp::socket(ioc);
    acceptor.accept(peer);
    return std::move(acquired.conn);
  }

  /// A new connection put in the pool, whose upstream then closed it; returns it (for identity).
  Connection* idle_then_closed_by_peer() {
    auto conn = connect();
    Connection* raw = conn.get();
    pool->release(std::move(conn));
    peer.close();
    settle();
    return raw;
  }
};

}  // namespace

TEST_SUITE("upstream.pool") {
  TEST_CASE("a healthy idle connection is reused, checked or not") {
    for (const bool retryable : {false, true}) {
      PoolFixture f(Duration{60'000});
      auto conn = f.connect();
      Connection* raw = conn.get();
      f.pool->release(std::move(conn));
      settle();
      auto again = f.pool->take_idle(retryable);
      CHECK(again.get() == raw);
      CHECK(f.pool->reuses() == 1);
      CHECK(f.pool->open_count() == 1);
    }
  }

  TEST_CASE("by default every reuse is checked: a connection the upstream closed is dropped") {
    for (const bool retryable : {false, true}) {
      PoolFixture f(Duration{0});
      f.idle_then_closed_by_peer();
      CHECK(f.pool->take_idle(retryable) == nullptr);
      CHECK(f.pool->open_count() == 0);  // the slot is free for a new connection
      CHECK(f.pool->idle_count() == 0);
    }
  }

  TEST_CASE("stray bytes while idle make the connection unusable") {
    PoolFixture f(Duration{0});
    auto conn = f.connect();
    f.pool->release(std::move(conn));
    net::write(f.peer,
               net::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison")));
    settle();
    CHECK(f.pool->take_idle(true) == nullptr);
    CHECK(f.pool->open_count() == 0);
  }

  TEST_CASE("a request that cannot be retried is always checked, whatever reuse_check_after is") {
    PoolFixture f(Duration{60'000});
    f.idle_then_closed_by_peer();
    CHECK(f.pool->take_idle(false) == nullptr);
  }

  TEST_CASE(
      "after a HEAD/204/304 response the next reuse is checked, whatever reuse_check_after is") {
    PoolFixture f(Duration{60'000});
    auto conn = f.connect();
    conn->check_on_reuse = true;  // what the forwarder sets after a bodiless response
    f.pool->release(std::move(conn));
    net::write(f.peer, net::buffer(std::string_view("hello")));  // the late body
    settle();
    CHECK(f.pool->take_idle(true) == nullptr);
  }

  TEST_CASE("reuse_check_after: a retryable request skips the check within it, not after it") {
    {
      // Within: no system call, so a close that landed is found by the request (and retried).
      PoolFixture f(Duration{60'000});
      Connection* raw = f.idle_then_closed_by_peer();
      CHECK(f.pool->take_idle(true).get() == raw);
    }
    {
      PoolFixture f(Duration{10});
      f.idle_then_closed_by_peer();  // idle for 30 ms > 10 ms
      CHECK(f.pool->take_idle(true) == nullptr);
    }
  }

  TEST_CASE("sweep drops idle connections the upstream closed, whatever reuse_check_after is") {
    PoolFixture f(Duration{60'000});
    f.idle_then_closed_by_peer();
    f.pool->sweep();
    CHECK(f.pool->idle_count() == 0);
    CHECK(f.pool->open_count() == 0);
  }
}
