#pragma once
#include <cstdint>

#include "problemgate/config/config.hpp"
#include "problemgate/ratelimit/rate_limiter.hpp"

namespace problemgate::ratelimit {

/// The GCRA of RateLimiter with its time unit as a parameter, for a store that keeps the
/// theoretical arrival time (TAT) elsewhere. The Redis store counts in microseconds: its script
/// runs in Lua, whose numbers are doubles and exact only up to 2^53 (~285 years of µs, but only
/// ~104 days of ns since the epoch). Same arithmetic as RateLimiter::check, so the headers mean
/// the same whichever store made the decision.
struct Gcra {
  std::uint64_t limit = 0;    ///< limit + burst, saturated
  std::int64_t interval = 1;  ///< T: one request's worth of time (ceil(window / limit))
  std::int64_t capacity = 0;  ///< limit * T: how far the TAT may run ahead of now
  std::int64_t window = 1;
  std::int64_t per_second = 1;  ///< units per second

  /// `units_per_ms`: 1000 for µs. Spans are capped at `max_span` units.
  static Gcra of(const config::RateLimitPolicy& policy, std::int64_t units_per_ms,
                 std::int64_t max_span) noexcept;

  /// The decision for one step taken elsewhere: `now` the time it was taken at, `tat` the new
  /// TAT when allowed, else the TAT it found (max(stored, now)).
  Decision decide(bool allowed, std::int64_t now, std::int64_t tat) const noexcept;
};

}  // namespace problemgate::ratelimit
