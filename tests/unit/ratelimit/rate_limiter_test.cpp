#include "problemgate/ratelimit/rate_limiter.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <latch>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

using problemgate::config::RateLimitPolicy;
using problemgate::core::FakeClock;
using problemgate::ratelimit::Decision;
using problemgate::ratelimit::HashKey;
using problemgate::ratelimit::KeyDigest;
using problemgate::ratelimit::LimitKey;
using problemgate::ratelimit::RateLimiter;
using problemgate::ratelimit::request_key;
using Kind = problemgate::config::RateLimitPolicy::Key;

namespace {

constexpr std::int64_t kStartS = 1'700'000'000;  // FakeClock's default start, in seconds
constexpr HashKey kTestKey{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};

// Writes `i` as 16 decimal digits over the start of `key`: distinct keys that share the rest.
std::string_view stamp(std::string& key, std::size_t i) {
  for (int d = 15; d >= 0; --d, i /= 10)
    key[static_cast<std::size_t>(d)] = static_cast<char>('0' + i % 10);
  return key;
}

RateLimitPolicy policy(std::uint64_t limit, std::int64_t window_ms, std::uint64_t burst = 0) {
  RateLimitPolicy p;
  p.limit = limit;
  p.window = std::chrono::milliseconds(window_ms);
  p.burst = burst;
  return p;
}

}  // namespace

TEST_SUITE("ratelimit.rate_limiter") {
  TEST_CASE("fresh key: full quota minus one, reset after one interval") {
    FakeClock clock;
    RateLimiter rl(policy(100, 60'000), clock, kTestKey);
    const Decision d = rl.check("1.2.3.4");
    CHECK(d.allowed);
    CHECK(d.limit == 100);
    CHECK(d.remaining == 99);
    CHECK(d.reset_after_s == 1);  // T = 600 ms, rounded up
    CHECK(d.reset_epoch_s == kStartS + 1);
    CHECK(d.retry_after_s == 0);
    CHECK(rl.tracked_keys() == 1);
  }

  TEST_CASE("a sequence counts down exactly, then denies without consuming") {
    FakeClock clock;
    RateLimiter rl(policy(100, 60'000), clock, kTestKey);
    for (std::uint64_t i = 0; i < 100; ++i) {
      const Decision d = rl.check("k");
      REQUIRE(d.allowed);
      CHECK(d.remaining == 99 - i);
    }
    for (int i = 0; i < 3; ++i) {
      const Decision d = rl.check("k");
      CHECK_FALSE(d.allowed);
      CHECK(d.remaining == 0);
      CHECK(d.limit == 100);
      CHECK(d.reset_after_s == 60);
      CHECK(d.reset_epoch_s == kStartS + 60);
      CHECK(d.retry_after_s == 1);  // one interval: 600 ms -> 1 s
    }
  }

  TEST_CASE("refill is continuous: one interval gives one request, a window gives all") {
    FakeClock clock;
    RateLimiter rl(policy(100, 60'000), clock, kTestKey);
    for (int i = 0; i < 100; ++i) rl.check("k");
    REQUIRE_FALSE(rl.check("k").allowed);

    SUBCASE("one interval") {
      clock.advance_ms(599);
      CHECK_FALSE(rl.check("k").allowed);
      clock.advance_ms(1);
      const Decision d = rl.check("k");
      CHECK(d.allowed);
      CHECK(d.remaining == 0);
      CHECK_FALSE(rl.check("k").allowed);
    }
    SUBCASE("ten intervals") {
      clock.advance_ms(6'000);
      const Decision d = rl.check("k");
      CHECK(d.allowed);
      CHECK(d.remaining == 9);
      CHECK(d.reset_after_s == 55);  // TAT = start + 60.6 s, now = start + 6 s: 54.6 -> 55
    }
    SUBCASE("a whole window") {
      clock.advance_ms(60'000);
      const Decision d = rl.check("k");
      CHECK(d.allowed);
      CHECK(d.remaining == 99);
      CHECK(d.reset_after_s == 1);
      CHECK(d.reset_epoch_s == kStartS + 61);
    }
    SUBCASE("idle for longer than a window does not bank extra quota") {
      clock.advance_ms(10 * 60'000);
      int allowed = 0;
      while (rl.check("k").allowed) ++allowed;
      CHECK(allowed == 100);
    }
  }

  TEST_CASE("reset arithmetic rounds up to whole seconds") {
    FakeClock clock;
    RateLimiter rl(policy(100, 60'000), clock, kTestKey);
    for (int i = 0; i < 10; ++i) rl.check("k");
    const Decision d = rl.check("k");  // 11 used: full in 6.6 s
    CHECK(d.remaining == 89);
    CHECK(d.reset_after_s == 7);
    CHECK(d.reset_epoch_s == kStartS + 7);
    clock.advance_ms(3'300);           // half-way: 3.3 s to go
    const Decision e = rl.check("k");  // 5.5 intervals refilled, one more used: 6.5 used
    CHECK(e.remaining == 93);
    CHECK(e.reset_after_s == 4);            // TAT 7.2 s, now 3.3 s: 3.9 -> 4
    CHECK(e.reset_epoch_s == kStartS + 8);  // 7.2 -> 8: epoch and now_s + delta may differ by 1
  }

  TEST_CASE("retry_after counts down to the next admissible request, at least 1") {
    FakeClock clock;
    RateLimiter rl(policy(10, 60'000), clock, kTestKey);  // T = 6 s
    for (int i = 0; i < 10; ++i) rl.check("k");
    CHECK(rl.check("k").retry_after_s == 6);
    clock.advance_ms(2'500);
    CHECK(rl.check("k").retry_after_s == 4);  // 3.5 s -> 4
    clock.advance_ms(3'499);
    CHECK(rl.check("k").retry_after_s == 1);  // 1 ms -> 1, never 0
    clock.advance_ms(1);
    CHECK(rl.check("k").allowed);
  }

  TEST_CASE("burst: capacity is limit + burst, refill stays limit per window") {
    FakeClock clock;
    RateLimiter rl(policy(10, 60'000, 5), clock, kTestKey);
    Decision d = rl.check("k");
    CHECK(d.limit == 15);
    CHECK(d.remaining == 14);
    for (int i = 0; i < 14; ++i) d = rl.check("k");
    CHECK(d.allowed);
    CHECK(d.remaining == 0);
    CHECK(d.reset_after_s == 90);  // 15 intervals of 6 s
    CHECK_FALSE(rl.check("k").allowed);
    clock.advance_ms(6'000);
    CHECK(rl.check("k").allowed);
    CHECK_FALSE(rl.check("k").allowed);
  }

  TEST_CASE("window boundary: 1 per second admits again at exactly +1 s") {
    FakeClock clock;
    RateLimiter rl(policy(1, 1'000), clock, kTestKey);
    CHECK(rl.check("k").allowed);
    clock.advance_ns(999'999'999);
    const Decision d = rl.check("k");
    CHECK_FALSE(d.allowed);
    CHECK(d.retry_after_s == 1);
    CHECK(d.reset_after_s == 1);
    clock.advance_ns(1);
    CHECK(rl.check("k").allowed);
  }

  TEST_CASE("an interval that does not divide evenly never over-admits") {
    FakeClock clock;
    RateLimiter rl(policy(3, 1'000), clock, kTestKey);  // T = 333'333'334 ns (rounded up)
    int allowed = 0;
    for (int ms = 0; ms < 10'000; ++ms) {
      if (rl.check("k").allowed) ++allowed;
      clock.advance_ms(1);
    }
    // 3 up front, then one per T: the 30th refill lands 20 ns after the 10 s mark.
    CHECK(allowed == 3 + 29);
  }

  TEST_CASE("distinct keys are independent") {
    FakeClock clock;
    RateLimiter rl(policy(2, 60'000), clock, kTestKey);
    CHECK(rl.check("a").allowed);
    CHECK(rl.check("a").allowed);
    CHECK_FALSE(rl.check("a").allowed);
    const Decision b = rl.check("b");
    CHECK(b.allowed);
    CHECK(b.remaining == 1);
    CHECK(rl.tracked_keys() == 2);
  }

  TEST_CASE("limit 0 denies everything and tracks nothing") {
    FakeClock clock;
    RateLimiter rl(policy(0, 60'000), clock, kTestKey);
    const Decision d = rl.check("k");
    CHECK_FALSE(d.allowed);
    CHECK(d.remaining == 0);
    CHECK(d.retry_after_s == 60);
    CHECK(rl.tracked_keys() == 0);
  }

  TEST_CASE("concurrency: 1000 concurrent checks against limit 100 admit exactly 100") {
    FakeClock clock;  // never advanced while threads run: concurrent reads only
    RateLimiter rl(policy(100, 60'000), clock, kTestKey);
    constexpr int kThreads = 8;
    constexpr int kPerThread = 125;
    std::atomic<int> allowed{0};
    std::vector<std::vector<std::uint64_t>> remaining(kThreads);
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        for (int i = 0; i < kPerThread; ++i) {
          const Decision d = rl.check("shared");
          if (d.allowed) {
            allowed.fetch_add(1, std::memory_order_relaxed);
            remaining[static_cast<std::size_t>(t)].push_back(d.remaining);
          }
          // A second key per thread spreads load over other shards at the same time.
          rl.check("own-" + std::to_string(t));
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(allowed.load() == 100);
    std::set<std::uint64_t> seen;
    for (const auto& v : remaining) seen.insert(v.begin(), v.end());
    CHECK(seen.size() == 100);  // every remaining value 99..0 handed out exactly once
    CHECK(*seen.begin() == 0);
    CHECK(*seen.rbegin() == 99);
  }

  TEST_CASE(
      "a thread delayed between reading the clock and updating never reports a stale remaining") {
    // Thread A's clock read stalls (up to 300 ms) waiting for thread B's whole check to finish, while
    // B's read sees a later time. If the limiter read the clock before taking the key's lock, A
    // would then apply its older time after B's update and report one remaining too few: two
    // admitted requests with the same remaining (the bug CI caught through the gateway). With the
    // read under the lock, B simply waits for A.
    struct StallingClock final : problemgate::core::Clock {
      std::atomic<std::int64_t> base{1'700'000'000'000'000'000};
      std::atomic<bool> b_done{false};
      std::atomic<int> reads{0};
      std::int64_t now_ns() const noexcept override {
        auto* self = const_cast<StallingClock*>(this);
        const int n = self->reads.fetch_add(1);
        if (n == 0) {  // thread A's read: the stale one
          const std::int64_t t = base.load();
          for (int i = 0; i < 300 && !b_done.load(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          return t;
        }
        return base.load() + 5'000'000;  // everyone later reads 5 ms further on
      }
    };
    StallingClock clock;
    RateLimiter rl(policy(100, 3'600'000), clock, kTestKey);
    Decision a, b;
    std::thread ta([&] { a = rl.check("k"); });
    while (clock.reads.load() == 0) std::this_thread::yield();
    std::thread tb([&] {
      b = rl.check("k");
      clock.b_done.store(true);
    });
    ta.join();
    tb.join();
    REQUIRE(a.allowed);
    REQUIRE(b.allowed);
    CHECK(a.remaining != b.remaining);
    CHECK(std::set<std::uint64_t>{a.remaining, b.remaining} == std::set<std::uint64_t>{98, 99});
  }

  TEST_CASE("memory is bounded by max_keys") {
    FakeClock clock;
    RateLimiter rl(policy(10, 60'000), clock, kTestKey, 1'000);
    CHECK(rl.capacity() <= 1'000);
    for (int i = 0; i < 20'000; ++i) {
      CHECK(rl.check("key-" + std::to_string(i)).allowed);  // a new key is always admitted
      if (i % 997 == 0) clock.advance_ms(1);
    }
    CHECK(rl.tracked_keys() <= rl.capacity());
    CHECK(rl.tracked_keys() > 0);
  }

  TEST_CASE("eviction drops expired keys first, then the keys closest to full") {
    FakeClock clock;
    RateLimiter rl(policy(10, 60'000), clock, kTestKey, 100);  // one shard of 100
    REQUIRE(rl.capacity() == 100);

    SUBCASE("a heavy live key outlives churn of light keys") {
      while (rl.check("heavy").allowed) {}
      for (int i = 0; i < 1'000; ++i) rl.check("light-" + std::to_string(i));
      CHECK(rl.tracked_keys() <= 100);
      CHECK_FALSE(rl.check("heavy").allowed);
    }
    SUBCASE("expired keys go before any live one") {
      for (int i = 0; i < 99; ++i) rl.check("old-" + std::to_string(i));
      clock.advance_ms(6'000);  // old keys (one request each) are full again: no state
      while (rl.check("live").allowed) {}
      rl.check("new");  // shard full: the sweep must free the 99 expired keys only
      CHECK(rl.tracked_keys() == 2);
      CHECK_FALSE(rl.check("live").allowed);
    }
    SUBCASE("an evicted key starts fresh (fail-open for that key)") {
      rl.check("victim");  // TAT = now + 6 s: the smallest of all
      clock.advance_ms(1);
      for (int i = 0; i < 100; ++i) {
        for (int j = 0; j < 5; ++j) rl.check("busy-" + std::to_string(i));
      }
      const Decision d = rl.check("victim");
      CHECK(d.allowed);
      CHECK(d.remaining == 9);
    }
  }

  TEST_CASE("request_key per policy key kind") {
    RateLimitPolicy p;
    const auto key = [&](std::string_view header) {
      return request_key(p, "10.0.0.1", header, "agents");
    };
    p.key = Kind::client_ip;
    CHECK(key("abc").kind == Kind::client_ip);
    CHECK(key("abc").text == "10.0.0.1");
    p.key = Kind::route;
    CHECK(key("abc").kind == Kind::route);
    CHECK(key("abc").text == "agents");
    p.key = Kind::header;
    p.header_name = "X-Api-Key";
    CHECK(key("abc").kind == Kind::header);
    CHECK(key("abc").text == "abc");
    CHECK(key("").kind == Kind::client_ip);  // missing -> ip
    CHECK(key("").text == "10.0.0.1");
  }

  // State keyed by client input must have a fixed size per key.
  static_assert(std::is_same_v<RateLimiter::StoredKey, KeyDigest>);
  static_assert(sizeof(RateLimiter::StoredKey) == 16);
  static_assert(std::is_trivially_copyable_v<RateLimiter::StoredKey>);  // owns no other memory

  TEST_CASE("keys: same text same bucket, distinct text or kind distinct buckets") {
    FakeClock clock;
    RateLimiter rl(policy(1, 3'600'000), clock, kTestKey);
    const std::string long_a(30'000, 'a');
    std::string long_b = long_a;
    long_b.back() = 'b';  // differs in the last byte only
    CHECK(rl.check(LimitKey{Kind::header, long_a}).allowed);
    CHECK_FALSE(rl.check(LimitKey{Kind::header, std::string(long_a)}).allowed);  // same value
    CHECK(rl.check(LimitKey{Kind::header, long_b}).allowed);
    // Same text, other kind: a header value spelling an ip is not that ip's bucket.
    CHECK(rl.check(LimitKey{Kind::header, "10.0.0.1"}).allowed);
    CHECK(rl.check(LimitKey{Kind::client_ip, "10.0.0.1"}).allowed);
    CHECK(rl.check(LimitKey{Kind::route, "10.0.0.1"}).allowed);
    CHECK_FALSE(rl.check(LimitKey{Kind::client_ip, "10.0.0.1"}).allowed);
    CHECK(rl.tracked_keys() == 5);

    CHECK(rl.digest({Kind::header, long_a}) == rl.digest({Kind::header, std::string(long_a)}));
    CHECK_FALSE(rl.digest({Kind::header, long_a}) == rl.digest({Kind::header, long_b}));
    CHECK_FALSE(rl.digest({Kind::header, "x"}) == rl.digest({Kind::client_ip, "x"}));
  }

  TEST_CASE("limiters with different hash keys store different digests for the same key") {
    FakeClock clock;
    RateLimiter a(policy(1, 60'000), clock, kTestKey);
    RateLimiter same(policy(1, 60'000), clock, kTestKey);
    RateLimiter b(policy(1, 60'000), clock, HashKey{kTestKey.k0, kTestKey.k1 ^ 1});
    const LimitKey key{Kind::header, "api-key-1"};
    CHECK(a.digest(key) == same.digest(key));
    CHECK_FALSE(a.digest(key) == b.digest(key));
    CHECK_FALSE(a.digest(key).lo == b.digest(key).lo);
    CHECK_FALSE(a.digest(key).hi == b.digest(key).hi);
    // Either key gives the same decisions: the hash key changes where state lives, not what it is.
    CHECK(a.check(key).allowed);
    CHECK(b.check(key).allowed);
    CHECK_FALSE(a.check(key).allowed);
    CHECK_FALSE(b.check(key).allowed);
  }

  TEST_CASE("3,000 distinct 30 KB keys: one bucket each, and each keeps its count") {
    FakeClock clock;
    RateLimiter rl(policy(2, 60'000), clock, kTestKey, 10'000);
    std::string key(30 * 1024, 'k');
    const auto nth = [&key](std::size_t i) { return LimitKey{Kind::header, stamp(key, i)}; };
    for (std::size_t i = 0; i < 3'000; ++i) CHECK(rl.check(nth(i)).remaining == 1);
    CHECK(rl.tracked_keys() == 3'000);
    for (std::size_t i = 0; i < 3'000; ++i) CHECK(rl.check(nth(i)).remaining == 0);
    CHECK(rl.tracked_keys() == 3'000);
  }
}

// Heavy and allocator-specific: Release without sanitizers only (ASan/TSan replace malloc).
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
namespace {

std::size_t heap_in_use() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

// Heap growth per key for `count` distinct keys made by `make_key(i, buf)` (returns the key).
// `buf` is allocated before the measurement starts, so only the limiter's memory is counted.
template <class MakeKey>
double bytes_per_key(std::size_t count, std::size_t buf_size, MakeKey make_key) {
  FakeClock clock;
  std::string buf(buf_size, 'k');
  const std::size_t before = heap_in_use();
  // max_keys above the key count so no shard evicts: this measures live-key cost.
  auto rl = std::make_unique<RateLimiter>(policy(100, 60'000), clock, kTestKey, 2 * count);
  for (std::size_t i = 0; i < count; ++i) rl->check(make_key(i, buf));
  REQUIRE(rl->tracked_keys() == count);
  const std::size_t after = heap_in_use();
  return static_cast<double>(after - before) / static_cast<double>(count);
}

double ip_bytes_per_key(bool ipv6) {
  return bytes_per_key(1'000'000, 64, [ipv6](std::size_t i, std::string& buf) {
    const auto a = static_cast<unsigned>(i >> 16);
    const auto b = static_cast<unsigned>((i >> 8) & 0xff);
    const auto c = static_cast<unsigned>(i & 0xff);
    const int n = ipv6 ? std::snprintf(buf.data(), buf.size(),
                                       "2001:0db8:85a3:0000:0000:8a2e:%04x:%04x", a, (b << 8) | c)
                       : std::snprintf(buf.data(), buf.size(), "10.%u.%u.%u", a, b, c);
    return LimitKey{Kind::client_ip, std::string_view(buf.data(), static_cast<std::size_t>(n))};
  });
}

}  // namespace

TEST_SUITE("ratelimit.rate_limiter") {
  TEST_CASE("1M live keys: memory") {
    const double v4 = ip_bytes_per_key(false);
    const double v6 = ip_bytes_per_key(true);
    MESSAGE("1M IPv4 keys: " << v4 << " B/key (" << v4 << " MB total); 1M IPv6 keys: " << v6
                             << " B/key");
    CHECK(v4 < 72);
    CHECK(v6 < 72);  // the text's length no longer matters
  }

  TEST_CASE("3,000 distinct 30 KB header keys: memory per key does not grow with the key") {
    // Before keys were hashed, each cost its whole text: ~30 KB, ~90 MB for these 3,000.
    const double per_key = bytes_per_key(3'000, 30 * 1024, [](std::size_t i, std::string& buf) {
      return LimitKey{Kind::header, stamp(buf, i)};
    });
    MESSAGE("3,000 x 30 KB header keys: " << per_key << " B/key");
    CHECK(per_key < 128);
  }
}
#endif
