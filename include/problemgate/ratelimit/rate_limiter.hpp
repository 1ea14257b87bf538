#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "problemgate/config/config.hpp"
#include "problemgate/core/clock.hpp"
#include "problemgate/ratelimit/key_hash.hpp"

namespace problemgate::ratelimit {

/// The outcome of one `RateLimiter::check`, with everything the response headers need.
struct Decision {
  bool allowed = false;
  std::uint64_t limit = 0;         ///< bucket capacity: policy `limit + burst`
  std::uint64_t remaining = 0;     ///< requests admissible right now after this one; never negative
  std::int64_t reset_epoch_s = 0;  ///< Unix seconds (ceil) when the quota is full again
  std::int64_t reset_after_s = 0;  ///< seconds from now (ceil) until the quota is full again
  std::int64_t retry_after_s =
      0;  ///< denied: seconds (ceil, >= 1) until one request is admitted; else 0
};

/// What one request is limited by: the kind of key and its text (an ip address, a header value,
/// a route name). The kind is hashed along with the text, so a header value can never land in
/// the bucket of the ip address it spells.
struct LimitKey {
  config::RateLimitPolicy::Key kind = config::RateLimitPolicy::Key::client_ip;
  std::string_view text;
};

/// Per-key GCRA limiter for one policy (`limit` requests per `window`, plus `burst`).
///
/// Semantics: a key starts full with `limit + burst` requests; spent quota refills continuously at
/// `limit` per `window` (one request every T = window/limit, T rounded up to the nanosecond so
/// the limiter never admits more than the policy). State is one 64-bit theoretical arrival time
/// (TAT) per key; a key whose TAT has passed is indistinguishable from a new one and is dropped
/// first when memory is short.
///
/// Keys are stored as their keyed 128-bit digest (SipHash-2-4-128 under `hash_key`), never as
/// text: every key costs the same fixed size however long the client made it, and without the
/// key a client cannot make its values collide in the table.
///
/// Thread-safety: `check` and `tracked_keys` may be called concurrently from any thread (the
/// keys are spread over internal mutex-guarded shards). The clock must outlive the limiter.
///
/// Memory is bounded: at most `max_keys` keys are tracked. When a shard is full, expired keys are
/// dropped; if that frees less than 1/8 of the shard, the live keys closest to full (smallest TAT)
/// are evicted too. An evicted key is treated as fresh on its next request (fail-open for that
/// key only), and the sweep is O(shard) once per >= shard/8 inserts, so churn cannot make every
/// insert pay for a full scan. Measured footprint: see rate_limiter.cpp (kMeasuredBytesPerKey).
///
/// A policy with `limit == 0` denies everything (config validation rejects it; this is only
/// the defined behaviour if one slips through).
class RateLimiter {
 public:
  static constexpr std::size_t kDefaultMaxKeys = 1'000'000;

  /// What the table stores of a key: a fixed-size digest, whatever the key's length.
  using StoredKey = KeyDigest;

  RateLimiter(const config::RateLimitPolicy& policy, const core::Clock& clock,
              const HashKey& hash_key, std::size_t max_keys = kDefaultMaxKeys);
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  /// Takes one request for `key`: consumes one unit of quota when allowed, nothing when denied.
  /// Never throws; if memory for a new key cannot be allocated the request is allowed untracked.
  Decision check(const LimitKey& key) noexcept;
  /// Shorthand for a client-ip key.
  Decision check(std::string_view client_ip) noexcept {
    return check(LimitKey{config::RateLimitPolicy::Key::client_ip, client_ip});
  }

  /// The digest `key` is stored under (the same for equal keys of one limiter).
  StoredKey digest(const LimitKey& key) const noexcept;

  /// Keys currently holding state (including ones that have expired but not been swept yet).
  std::size_t tracked_keys() const noexcept;

  /// The upper bound on `tracked_keys()` (<= the `max_keys` given to the constructor).
  std::size_t capacity() const noexcept { return shard_cap_ * shard_count_; }

 private:
  struct Shard;

  Shard& shard_for(const StoredKey& key) const noexcept;

  const core::Clock& clock_;
  HashKey hash_key_;
  std::uint64_t limit_;       // limit + burst, saturated
  std::int64_t interval_ns_;  // T: one request's worth of time
  std::int64_t capacity_ns_;  // limit_ * T: the TAT may run at most this far ahead of now
  std::int64_t window_ns_;
  std::size_t shard_count_;  // power of two
  unsigned shard_shift_;     // 64 - log2(shard_count_)
  std::size_t shard_cap_;
  std::unique_ptr<Shard[]> shards_;
};

/// The limiter key for a request (spec §6), borrowing its text (valid while the arguments are):
/// Key::client_ip -> `client_ip`; Key::route -> `route_name`; Key::header -> `header_value`. A
/// missing or empty header ("" = absent) falls back to the client ip, so a client cannot escape
/// its limit by leaving out its API key.
LimitKey request_key(const config::RateLimitPolicy& policy, std::string_view client_ip,
                     std::string_view header_value, std::string_view route_name) noexcept;

}  // namespace problemgate::ratelimit
