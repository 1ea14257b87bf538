#include "problemgate/redis/store_client.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "problemgate/core/clock.hpp"
#include "problemgate/ratelimit/gcra.hpp"
#include "problemgate/ratelimit/rate_limiter.hpp"

extern char** environ;

namespace net = boost::asio;
using namespace problemgate;
using std::chrono::milliseconds;

namespace {

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool can_connect(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

/// A real redis-server (Debian's) on a free loopback port, for the test's lifetime.
class RedisProcess {
 public:
  RedisProcess() : port_(free_port()) {
    const std::string port = std::to_string(port_);
    const char* argv[] = {"redis-server", "--port", port.c_str(),   "--bind", "127.0.0.1",
                          "--save",       "",       "--appendonly", "no",     nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid_, "redis-server", &fa, nullptr, const_cast<char**>(argv), environ) != 0)
      pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 500 && pid_ > 0 && !can_connect(port_); ++i)
      std::this_thread::sleep_for(milliseconds(10));
  }
  ~RedisProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool running() const { return pid_ > 0 && can_connect(port_); }
  std::uint16_t port() const { return port_; }

 private:
  std::uint16_t port_;
  pid_t pid_ = -1;
};

config::RateLimitStore store_at(std::uint16_t port) {
  config::RateLimitStore s;
  s.type = config::RateLimitStore::Type::redis;
  s.host = "127.0.0.1";
  s.port = port;
  s.timeout = milliseconds(2000);
  s.key_prefix = "unit:";
  s.pool_size = 2;
  return s;
}

struct Harness {
  net::io_context ioc;
  obs::StoreCounters counters;
  redis::StoreHealth health;

  std::shared_ptr<redis::StoreClient> client(std::uint16_t port, ratelimit::HashKey secret) {
    auto c = std::make_shared<redis::StoreClient>(ioc.get_executor(), store_at(port), secret,
                                                  counters, health);
    c->start();
    return c;
  }

  redis::StoreClient::Result check(redis::StoreClient& c, const config::RateLimitPolicy& p,
                                   std::string_view key, std::optional<std::int64_t> now_us) {
    const auto gcra = ratelimit::Gcra::of(p, 1000, std::int64_t{1} << 52);
    std::optional<redis::StoreClient::Result> out;
    net::co_spawn(
        ioc,
        c.check("route", gcra, p.window, {config::RateLimitPolicy::Key::client_ip, key}, now_us),
        [&](std::exception_ptr, redis::StoreClient::Result r) { out = r; });
    while (!out) ioc.run_one();
    return *out;
  }
};

void same_decision(const ratelimit::Decision& local, const ratelimit::Decision& shared) {
  CHECK(local.allowed == shared.allowed);
  CHECK(local.limit == shared.limit);
  CHECK(local.remaining == shared.remaining);
  CHECK(local.reset_after_s == shared.reset_after_s);
  CHECK(local.reset_epoch_s == shared.reset_epoch_s);
  CHECK(local.retry_after_s == shared.retry_after_s);
}

}  // namespace

TEST_SUITE("redis.store") {
  TEST_CASE("the script decides exactly as the local limiter, step by step (injected time)") {
    RedisProcess server;
    REQUIRE(server.running());
    Harness h;
    auto client = h.client(server.port(), ratelimit::HashKey{1, 2});
    struct Case {
      std::uint64_t limit, burst;
      std::int64_t window_ms;
    };
    // Windows that divide into whole microseconds per request: both stores then have the same T.
    for (const Case c :
         {Case{10, 0, 1000}, Case{4, 2, 1000}, Case{3, 0, 3'600'000}, Case{100, 20, 60'000}}) {
      CAPTURE(c.limit);
      CAPTURE(c.burst);
      config::RateLimitPolicy p;
      p.limit = c.limit;
      p.burst = c.burst;
      p.window = milliseconds(c.window_ms);
      core::FakeClock clock(1'700'000'000'123'456'000);
      ratelimit::RateLimiter local(p, clock, ratelimit::HashKey{9, 9});
      const std::string key = "client-" + std::to_string(c.limit) + "-" + std::to_string(c.burst);
      // A deterministic mix of bursts and pauses of up to ~half a window.
      std::uint64_t x = 88172645463325252ull;
      for (int i = 0; i < 60; ++i) {
        CAPTURE(i);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (x % 3 == 0)
          clock.advance_ns(
              static_cast<std::int64_t>(x % static_cast<std::uint64_t>(c.window_ms * 500)) * 1000);
        const auto local_d = local.check(key);
        const auto r = h.check(*client, p, key, clock.now_ns() / 1000);
        REQUIRE(r.status == redis::StoreClient::Result::Status::decided);
        same_decision(local_d, r.decision);
      }
    }
    CHECK(h.counters.checks[static_cast<std::size_t>(obs::StoreCheck::allowed)].load() > 0);
    CHECK(h.counters.checks[static_cast<std::size_t>(obs::StoreCheck::limited)].load() > 0);
    CHECK(h.counters.checks[static_cast<std::size_t>(obs::StoreCheck::error)].load() == 0);
  }

  TEST_CASE("two clients with different secrets end up hashing alike") {
    RedisProcess server;
    REQUIRE(server.running());
    Harness h;
    auto a = h.client(server.port(), ratelimit::HashKey{1, 1});
    auto b = h.client(server.port(), ratelimit::HashKey{2, 2});
    config::RateLimitPolicy p;
    p.limit = 10;
    p.window = milliseconds(3'600'000);
    const auto ra = h.check(*a, p, "10.0.0.1", std::nullopt);
    REQUIRE(ra.status == redis::StoreClient::Result::Status::decided);
    CHECK(ra.decision.remaining == 9);
    // b adopts the secret a stored and so counts the same bucket.
    const auto rb = h.check(*b, p, "10.0.0.1", std::nullopt);
    REQUIRE(rb.status == redis::StoreClient::Result::Status::decided);
    CHECK(rb.decision.remaining == 8);
    CHECK(a->bucket_key("route", {config::RateLimitPolicy::Key::client_ip, "10.0.0.1"}) ==
          b->bucket_key("route", {config::RateLimitPolicy::Key::client_ip, "10.0.0.1"}));
    // A header value spelling the ip is another key.
    CHECK(a->bucket_key("route", {config::RateLimitPolicy::Key::header, "10.0.0.1"}) !=
          a->bucket_key("route", {config::RateLimitPolicy::Key::client_ip, "10.0.0.1"}));
  }

  TEST_CASE("no server: the check fails at once with an error, never hangs") {
    Harness h;
    auto c = h.client(free_port(), ratelimit::HashKey{1, 2});
    config::RateLimitPolicy p;
    p.limit = 1;
    const auto r = h.check(*c, p, "k", std::nullopt);
    CHECK(r.status != redis::StoreClient::Result::Status::decided);
    CHECK(h.health.degraded());
    // Backing off: the next check fails without touching the network.
    CHECK_FALSE(c->accepting());
    CHECK(h.check(*c, p, "k", std::nullopt).status == redis::StoreClient::Result::Status::error);
  }

  TEST_CASE("secrets round-trip through hex") {
    const ratelimit::HashKey k{0x0123456789abcdefull, 0xfedcba9876543210ull};
    const auto hex = redis::secret_to_hex(k);
    CHECK(hex.size() == 32);
    CHECK(redis::secret_from_hex(hex) == k);
    CHECK_FALSE(redis::secret_from_hex("xyz").has_value());
    CHECK_FALSE(redis::secret_from_hex(std::string(32, 'G')).has_value());
  }
}
