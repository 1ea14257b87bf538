#include "problemgate/ratelimit/gcra.hpp"

#include <algorithm>

namespace problemgate::ratelimit {

namespace {

std::int64_t ceil_div(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t q = a / b;
  return (a % b > 0) ? q + 1 : q;
}

}  // namespace

Gcra Gcra::of(const config::RateLimitPolicy& policy, std::int64_t units_per_ms,
              std::int64_t max_span) noexcept {
  Gcra g;
  g.per_second = units_per_ms * 1000;
  const std::uint64_t cap = policy.limit + policy.burst;
  g.limit = cap < policy.limit ? UINT64_MAX : cap;
  const std::int64_t ms = std::min<std::int64_t>(policy.window.count(), max_span / units_per_ms);
  g.window = std::clamp<std::int64_t>(ms * units_per_ms, 1, max_span);
  if (policy.limit == 0) {
    g.limit = 0;
    g.interval = g.window;
    g.capacity = 0;
    return g;
  }
  // Ceil, as RateLimiter: limit * T >= window, so no window sees more than `limit` refills.
  const auto w = static_cast<std::uint64_t>(g.window);
  g.interval = static_cast<std::int64_t>(w / policy.limit + (w % policy.limit != 0));
  const auto max_units = static_cast<std::uint64_t>(max_span / g.interval);
  g.capacity = g.limit > max_units ? max_span : static_cast<std::int64_t>(g.limit) * g.interval;
  return g;
}

Decision Gcra::decide(bool allowed, std::int64_t now, std::int64_t tat) const noexcept {
  Decision d;
  d.limit = limit;
  if (limit == 0) {
    d.reset_epoch_s = ceil_div(now, per_second);
    d.retry_after_s = std::max<std::int64_t>(1, ceil_div(window, per_second));
    return d;
  }
  d.allowed = allowed;
  if (allowed) {
    const std::int64_t full_in = tat - now;
    d.remaining =
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, capacity - full_in) / interval);
    d.reset_after_s = ceil_div(full_in, per_second);
    d.reset_epoch_s = ceil_div(tat, per_second);
  } else {
    d.reset_after_s = ceil_div(tat - now, per_second);
    d.reset_epoch_s = ceil_div(tat, per_second);
    d.retry_after_s =
        std::max<std::int64_t>(1, ceil_div(tat + interval - capacity - now, per_second));
  }
  return d;
}

}  // namespace problemgate::ratelimit
