// ns per RateLimiter::check: one hot key, 100k distinct keys, and both with 2 threads.
// SystemClock (the production clock, its vDSO read is part of the cost) and a limit high
// enough that the admit path, which writes the TAT, is what gets measured.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "problemgate/ratelimit/rate_limit_headers.hpp"
#include "problemgate/ratelimit/rate_limiter.hpp"

namespace {

using problemgate::config::RateLimitPolicy;
using problemgate::core::SystemClock;
using problemgate::ratelimit::RateLimiter;

constexpr std::size_t kDistinctKeys = 100'000;
constexpr problemgate::ratelimit::HashKey kBenchKey{0x0123456789abcdefull, 0xfedcba9876543210ull};

RateLimitPolicy generous_policy() {
  RateLimitPolicy p;
  p.limit = 1'000'000'000;
  p.window = std::chrono::milliseconds(1'000);
  return p;
}

SystemClock& clock_instance() {
  static SystemClock clock;
  return clock;
}

RateLimiter& shared_limiter() {
  static RateLimiter rl(generous_policy(), clock_instance(), kBenchKey);
  return rl;
}

const std::vector<std::string>& distinct_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    k.reserve(kDistinctKeys);
    char buf[32];
    for (std::size_t i = 0; i < kDistinctKeys; ++i) {
      const int n =
          std::snprintf(buf, sizeof buf, "10.%zu.%zu.%zu", i >> 16, (i >> 8) & 0xff, i & 0xff);
      k.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return k;
  }();
  return keys;
}

void BM_CheckHotKey(benchmark::State& state) {
  RateLimiter& rl = shared_limiter();
  for (auto _ : state) benchmark::DoNotOptimize(rl.check("203.0.113.7"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CheckHotKey);
BENCHMARK(BM_CheckHotKey)->Threads(2)->UseRealTime();

void BM_CheckDistinctKeys(benchmark::State& state) {
  RateLimiter& rl = shared_limiter();
  const auto& keys = distinct_keys();
  // Threads start at different offsets so they do not walk the same shards in lockstep.
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * (kDistinctKeys / 2);
  for (auto _ : state) {
    benchmark::DoNotOptimize(rl.check(keys[i]));
    if (++i == kDistinctKeys) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CheckDistinctKeys);
BENCHMARK(BM_CheckDistinctKeys)->Threads(2)->UseRealTime();

// The same without the clock read: what the limiter itself costs.
void BM_CheckHotKeyFakeClock(benchmark::State& state) {
  const problemgate::core::FakeClock fake;
  RateLimiter rl(generous_policy(), fake, kBenchKey);
  for (auto _ : state) benchmark::DoNotOptimize(rl.check("203.0.113.7"));
}
BENCHMARK(BM_CheckHotKeyFakeClock);

// The deny path on a hot key: a fresh limiter with limit 1 per hour.
void BM_CheckDeniedHotKey(benchmark::State& state) {
  RateLimitPolicy p;
  p.limit = 1;
  p.window = std::chrono::milliseconds(3'600'000);
  RateLimiter rl(p, clock_instance(), kBenchKey);
  rl.check("203.0.113.7");
  for (auto _ : state) benchmark::DoNotOptimize(rl.check("203.0.113.7"));
}
BENCHMARK(BM_CheckDeniedHotKey);

// Per-response cost of the header builder (x_ratelimit, both sources), reusing `out`.
void BM_BuildHeaders(benchmark::State& state) {
  const problemgate::ratelimit::Decision d{true, 100, 42, 1'706'900'060, 17, 0};
  problemgate::ratelimit::UpstreamLimit u;
  u.limit = 1000;
  u.remaining = 7;
  u.reset_epoch_s = 1'706'900'030;
  const problemgate::config::RateLimitHeaders fmt;
  std::vector<problemgate::ratelimit::HeaderField> out;
  for (auto _ : state) {
    out.clear();
    problemgate::ratelimit::build_headers(&d, &u, "agents", 60, fmt, 1'706'900'000, out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_BuildHeaders);

}  // namespace

BENCHMARK_MAIN();
