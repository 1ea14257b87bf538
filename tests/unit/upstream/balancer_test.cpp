// The balancing, outlier-ejection and retry-budget logic, with time passed in by hand.
#include "problemgate/upstream/balancer.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <future>

#include "support/loopback.hpp"

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

namespace net = boost::asio;
using problemgate::config::Upstream;
using problemgate::upstream::Balancer;
using problemgate::upstream::Cluster;
using problemgate::upstream::EndpointState;
using problemgate::upstream::RetryBudget;

namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

Upstream upstream_of(int n, Upstream::Lb lb = Upstream::Lb::round_robin) {
  Upstream u;
  u.name = "api";
  for (int i = 0; i < n; ++i) {
    const auto port = static_cast<std::uint16_t>(8001 + i);
    u.endpoints.push_back({"http://127.0.0.1:" + std::to_string(port), "127.0.0.1", port});
  }
  u.host = "127.0.0.1";
  u.port = 8001;
  u.lb = lb;
  u.outlier.consecutive_failures = 3;
  u.outlier.ejection_time = std::chrono::seconds(10);
  u.outlier.max_ejected_percent = 50;
  return u;
}

struct Fixture {
  explicit Fixture(int n, Upstream::Lb lb = Upstream::Lb::round_robin)
      : cluster(std::make_shared<Cluster>(upstream_of(n, lb))),
        balancer(ioc.get_executor(), cluster, upstream_of(n, lb)) {}
  net::io_context ioc;
  std::shared_ptr<Cluster> cluster;
  Balancer balancer;
  std::int64_t now = 1000 * kSecond;

  /// The port of the endpoint picked, excluding `tried` (0: none).
  int pick(std::vector<const EndpointState*> tried = {}, bool* panic_out = nullptr) {
    bool panic = false;
    const auto* p = balancer.pick(now, tried, panic);
    if (panic_out) *panic_out = panic;
    return p ? (*p)->endpoint()->address.port() : 0;
  }
  EndpointState& endpoint(int i) { return *(*cluster->endpoints())[static_cast<std::size_t>(i)]; }
};

}  // namespace

TEST_CASE("round robin takes every endpoint in turn") {
  Fixture f(3);
  std::map<int, int> seen;
  for (int i = 0; i < 30; ++i) ++seen[f.pick()];
  CHECK(seen == std::map<int, int>{{8001, 10}, {8002, 10}, {8003, 10}});
}

TEST_CASE("a retry never goes back to an endpoint already tried; none left means no pick") {
  Fixture f(2);
  const EndpointState* first = &f.endpoint(0);
  CHECK(f.pick({first}) == 8002);
  CHECK(f.pick({first, &f.endpoint(1)}) == 0);
}

TEST_CASE("an endpoint is ejected after consecutive failures and comes back after ejection_time") {
  Fixture f(3);
  auto& ep = f.endpoint(1);
  CHECK_FALSE(f.cluster->record_failure(ep, f.now));
  Cluster::record_success(ep);  // a success breaks the streak
  CHECK_FALSE(f.cluster->record_failure(ep, f.now));
  CHECK_FALSE(f.cluster->record_failure(ep, f.now));
  CHECK(f.cluster->record_failure(ep, f.now));
  CHECK(f.cluster->counters.ejections == 1);
  for (int i = 0; i < 10; ++i) CHECK(f.pick() != 8002);
  f.now += 10 * kSecond - 1;
  CHECK(ep.ejected(f.now));
  f.now += 1;
  CHECK_FALSE(ep.ejected(f.now));
  std::map<int, int> seen;
  for (int i = 0; i < 9; ++i) ++seen[f.pick()];
  CHECK(seen[8002] == 3);
}

TEST_CASE("repeated ejections double the ejection time, capped at 5 minutes") {
  Fixture f(3);
  auto& ep = f.endpoint(0);
  std::vector<std::int64_t> times;
  for (int round = 0; round < 7; ++round) {
    for (int i = 0; i < 3; ++i) f.cluster->record_failure(ep, f.now);
    const auto until = ep.ejected_until_ns.load();
    times.push_back((until - f.now) / kSecond);
    f.now = until;  // back in, and failing again at once
  }
  CHECK(times == std::vector<std::int64_t>{10, 20, 40, 80, 160, 300, 300});
  // An endpoint that stayed in longer than the cap starts over.
  f.now += 301 * kSecond;
  for (int i = 0; i < 3; ++i) f.cluster->record_failure(ep, f.now);
  CHECK((ep.ejected_until_ns.load() - f.now) / kSecond == 10);
}

TEST_CASE("never more than max_ejected_percent of the endpoints are ejected") {
  Fixture f(4);  // 50 %: two of four
  for (int e = 0; e < 4; ++e)
    for (int i = 0; i < 3; ++i) f.cluster->record_failure(f.endpoint(e), f.now);
  CHECK(f.cluster->counters.ejections == 2);
  CHECK(f.cluster->counters.ejections_refused == 2);
  bool all = true;
  CHECK(f.cluster->unavailable(f.now, all) == 2);
  CHECK_FALSE(all);
}

TEST_CASE("consecutive_failures: 0 never ejects") {
  auto u = upstream_of(2);
  u.outlier.consecutive_failures = 0;
  Cluster c(u);
  auto& ep = *(*c.endpoints())[0];
  for (int i = 0; i < 100; ++i) CHECK_FALSE(c.record_failure(ep, 0));
}

TEST_CASE(
    "health checks flip an endpoint at the thresholds; all unhealthy is panic routing to all") {
  auto u = upstream_of(2);
  u.health_check = problemgate::config::HealthCheck{};
  u.health_check->unhealthy_threshold = 2;
  u.health_check->healthy_threshold = 3;
  net::io_context ioc;
  auto cluster = std::make_shared<Cluster>(u);
  Balancer b(ioc.get_executor(), cluster, u);
  auto& e0 = *(*cluster->endpoints())[0];
  auto& e1 = *(*cluster->endpoints())[1];
  cluster->record_check(e0, false);
  CHECK(e0.healthy);
  cluster->record_check(e0, false);
  CHECK_FALSE(e0.healthy);
  bool panic = true;
  for (int i = 0; i < 4; ++i) CHECK((*b.pick(0, {}, panic))->endpoint().get() == &e1);
  CHECK_FALSE(panic);
  cluster->record_check(e1, false);
  cluster->record_check(e1, false);
  std::map<const EndpointState*, int> seen;
  for (int i = 0; i < 4; ++i) {
    ++seen[(*b.pick(0, {}, panic))->endpoint().get()];
    CHECK(panic);
  }
  CHECK(seen[&e0] == 2);
  CHECK(seen[&e1] == 2);
  cluster->record_check(e0, true);
  cluster->record_check(e0, true);
  CHECK_FALSE(e0.healthy);
  cluster->record_check(e0, true);
  CHECK(e0.healthy);
  CHECK((*b.pick(0, {}, panic))->endpoint().get() == &e0);
  CHECK_FALSE(panic);
}

TEST_CASE("least request prefers the endpoint with fewer requests in flight on this worker") {
  net::io_context ioc;
  auto a = problemgate::test::loopback_acceptor(ioc);
  auto b = problemgate::test::loopback_acceptor(ioc);
  Upstream u = upstream_of(0, Upstream::Lb::least_request);
  for (auto* acc : {&a, &b}) {
    const auto port = acc->local_endpoint().port();
    u.endpoints.push_back({"http://127.0.0.1:" + std::to_string(port), "127.0.0.1", port});
  }
  auto cluster = std::make_shared<Cluster>(u);
  Balancer bal(ioc.get_executor(), cluster, u);
  bool panic = false;
  std::map<int, int> idle_picks;
  for (int i = 0; i < 40; ++i) ++idle_picks[(*bal.pick(0, {}, panic))->endpoint()->address.port()];
  CHECK(idle_picks.size() == 2);  // ties (nothing in flight) are spread at random
  // One request in flight on the first endpoint: with two endpoints both are always the two
  // choices, so the other one wins every time.
  auto fut = net::co_spawn(ioc, bal.pools().at(0)->connect(), net::use_future);
  while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
    ioc.run_one_for(std::chrono::milliseconds(10));
  auto in_flight = fut.get();
  REQUIRE(in_flight.conn);
  CHECK(bal.pools().at(0)->in_use() == 1);
  for (int i = 0; i < 20; ++i)
    CHECK((*bal.pick(0, {}, panic))->endpoint()->address.port() == b.local_endpoint().port());
  bal.pools().at(0)->discard(std::move(in_flight.conn));
}

TEST_CASE("the retry budget allows percent of requests plus the reserve") {
  RetryBudget b(20, 2);
  int retries = 0;
  for (int i = 0; i < 100; ++i) {
    b.on_request();
    while (b.try_retry()) ++retries;
  }
  CHECK(retries == 2 + 20 - 1);  // the reserve is full at the start: the first deposit is capped
  RetryBudget none(0, 0);
  none.on_request();
  CHECK_FALSE(none.try_retry());
}

TEST_CASE(
    "a hosts file answers for a name; changed answers replace the set, states of kept addresses stay") {
  char path[] = "/tmp/pg-hosts-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  write("# test\n127.0.0.1 svc.test other\n127.0.0.2 svc.test\n");
  Upstream u;
  u.name = "svc";
  u.host = "svc.test";
  u.port = 9000;
  u.endpoints = {{"http://svc.test:9000", "svc.test", 9000}};
  Cluster c(u, path);
  REQUIRE(c.endpoints()->size() == 2);
  CHECK(c.has_names());
  auto kept = (*c.endpoints())[1];
  CHECK(kept->label == "127.0.0.2:9000");
  CHECK(kept->authority == "svc.test:9000");
  const auto v = c.version();
  write("127.0.0.2 svc.test\n127.0.0.3 svc.test\n");
  c.refresh();
  CHECK(c.version() != v);
  REQUIRE(c.endpoints()->size() == 2);
  CHECK((*c.endpoints())[0] == kept);
  CHECK((*c.endpoints())[1]->label == "127.0.0.3:9000");
  // A failed lookup keeps the last good set.
  std::remove(path);
  c.refresh();
  CHECK(c.endpoints()->size() == 2);
  CHECK(c.counters.resolve_failures == 1);
}
