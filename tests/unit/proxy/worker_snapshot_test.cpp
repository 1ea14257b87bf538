#include "proxy/worker_snapshot.hpp"
#include "support/loopback.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "problemgate/core/clock.hpp"

namespace net = boost::asio;
using problemgate::config::Config;
using problemgate::config::Upstream;
using problemgate::proxy::Runtime;
using problemgate::proxy::WorkerSnapshot;
using problemgate::upstream::Connection;
using problemgate::upstream::UpstreamPool;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

/// One worker's side of hot reload: snapshots made one after the other from configs with one
/// upstream ("api"), whose address is a loopback acceptor (or a second one, for a move).
struct ReloadFixture {
  problemgate::core::FakeClock clock;
  problemgate::obs::Metrics metrics{1};
  problemgate::redis::StoreHealth store_health;
  net::io_context ioc;
  tcp::acceptor first = problemgate::test::loopback_acceptor(ioc);
  tcp::acceptor second = problemgate::test::loopback_acceptor(ioc);
  std::vector<tcp::socket> peers;  // accepted sides, kept open

  std::shared_ptr<const WorkerSnapshot> snapshot(const tcp::acceptor& upstream,
                                                 const WorkerSnapshot* previous) {
    Config cfg;
    Upstream up;
    up.name = "api";
    up.host = "127.0.0.1";
    up.port = upstream.local_endpoint().port();
    cfg.upstreams.push_back(up);
    auto rt = std::make_shared<const Runtime>(std::move(cfg), clock,
                                              problemgate::ratelimit::HashKey{1, 2},
                                              previous ? &previous->runtime() : nullptr);
    return WorkerSnapshot::make(std::move(rt), previous, ioc.get_executor(), metrics.worker(0),
                                store_health);
  }

  /// A new connection from `pool` to the acceptor it points at.
  /// The (only) endpoint pool of upstream 0 in `snap`.
  static UpstreamPool& pool(const std::shared_ptr<const WorkerSnapshot>& snap) {
    return *snap->balancer(0).pools().at(0);
  }

  std::unique_ptr<Connection> connect(UpstreamPool& pool, tcp::acceptor& upstream) {
    auto fut = net::co_spawn(ioc, pool.connect(), net::use_future);
    while (fut.wait_for(0s) != std::future_status::ready) ioc.run_one_for(10ms);
    auto acquired = fut.get();
    REQUIRE(acquired.conn);
    peers.emplace_back(ioc);
    upstream.accept(peers.back());
    return std::move(acquired.conn);
  }
};

}  // namespace

TEST_CASE(
    "a reload that keeps an upstream's name and address keeps its pools and idle connections") {
  ReloadFixture f;
  auto before = f.snapshot(f.first, nullptr);
  f.pool(before).release(f.connect(f.pool(before), f.first));
  REQUIRE(f.pool(before).idle_count() == 1);

  auto after = f.snapshot(f.first, before.get());
  CHECK(&f.pool(after) == &f.pool(before));
  CHECK(f.pool(after).idle_count() == 1);
  CHECK_FALSE(f.pool(after).retired());
}

TEST_CASE("a pool whose upstream moved outlives the reload while a request holds its snapshot") {
  ReloadFixture f;
  auto in_flight = f.snapshot(f.first, nullptr);  // what a suspended request holds
  UpstreamPool& old_pool = f.pool(in_flight);
  old_pool.release(f.connect(old_pool, f.first));
  auto conn = old_pool.take_idle();  // the request's connection, in use across the reload
  REQUIRE(conn);
  std::weak_ptr<const WorkerSnapshot> watch = in_flight;

  auto current = f.snapshot(f.second, in_flight.get());  // the worker's only reference moves on

  // New requests get a new pool for the new address; the old one hands out nothing again.
  CHECK(&f.pool(current) != &old_pool);
  CHECK(f.pool(current).endpoint()->address.port() == f.second.local_endpoint().port());
  CHECK(old_pool.retired());
  CHECK(old_pool.take_idle() == nullptr);
  // The request finishes on its pool, which is alive (ASan would report a use after free).
  old_pool.release(std::move(conn));
  CHECK(old_pool.idle_count() == 0);
  CHECK(old_pool.open_count() == 0);
  // ... and the old snapshot, with its pool, dies with the last request holding it.
  in_flight.reset();
  CHECK(watch.expired());
}

TEST_CASE("an upstream dropped by a reload retires its pool; its idle connections are closed") {
  ReloadFixture f;
  auto before = f.snapshot(f.first, nullptr);
  f.pool(before).release(f.connect(f.pool(before), f.first));
  auto pool = before->balancer(0).pools().at(0);
  Config empty;
  auto after =
      WorkerSnapshot::make(std::make_shared<const Runtime>(std::move(empty), f.clock,
                                                           problemgate::ratelimit::HashKey{1, 2}),
                           before.get(), f.ioc.get_executor(), f.metrics.worker(0), f.store_health);
  CHECK(after->balancers().empty());
  CHECK(pool->retired());
  CHECK(pool->idle_count() == 0);
  CHECK(pool->open_count() == 0);
}

TEST_CASE("snapshots count into the same per-name counters, so a reload keeps the series") {
  ReloadFixture f;
  auto before = f.snapshot(f.first, nullptr);
  auto after = f.snapshot(f.second, before.get());
  CHECK(&before->upstream_counters(0) == &after->upstream_counters(0));
  CHECK(&before->route_counters(nullptr) == &after->route_counters(nullptr));
}

TEST_CASE("a reload that changes only timeouts keeps the cluster, its balancer and its pools") {
  ReloadFixture f;
  auto before = f.snapshot(f.first, nullptr);
  auto& balancer = before->balancer(0);
  Config cfg;
  Upstream up;
  up.name = "api";
  up.host = "127.0.0.1";
  up.port = f.first.local_endpoint().port();
  up.timeout = std::chrono::milliseconds(1234);
  cfg.upstreams.push_back(up);
  auto rt = std::make_shared<const Runtime>(
      std::move(cfg), f.clock, problemgate::ratelimit::HashKey{1, 2}, &before->runtime());
  auto after = WorkerSnapshot::make(std::move(rt), before.get(), f.ioc.get_executor(),
                                    f.metrics.worker(0), f.store_health);
  CHECK(&after->balancer(0) == &balancer);
  CHECK(f.pool(after).settings().timeout == std::chrono::milliseconds(1234));
  CHECK(after->runtime().clusters[0] == before->runtime().clusters[0]);
}
