#include "problemgate/ratelimit/rate_limiter.hpp"

#include <algorithm>
#include <bit>
#include <functional>
#include <limits>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace problemgate::ratelimit {

namespace {

constexpr std::int64_t kNsPerS = 1'000'000'000;
constexpr std::size_t kMaxShards = 64;
// Below this many keys per shard, fewer shards: keeps tracked_keys() <= max_keys exact without
// shards of one entry that would evict on every new key.
constexpr std::size_t kMinKeysPerShard = 256;
// Largest span the TAT may run ahead of now (~73 years). now (~2^60.6 ns) + 2 * this stays
// below 2^63, so TAT arithmetic cannot overflow whatever the policy says.
constexpr std::int64_t kMaxSpanNs = std::int64_t{1} << 61;

// Measured by "1M live keys: memory" in rate_limiter_test.cpp (glibc malloc, x86-64, Release):
// IPv4-text keys (<= 15 chars, fit std::string's SSO) cost ~75 bytes each, i.e. ~75 MB for
// 1,000,000 live keys; IPv6-text keys (39 chars) add a 48-byte heap block, ~123 bytes each.
// Node (next, std::string, TAT, cached hash: 56 -> 64-byte chunk) plus the bucket arrays.
[[maybe_unused]] constexpr std::size_t kMeasuredBytesPerKey = 75;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) noexcept {
  // b > 0. Rounds toward +infinity for either sign of a.
  std::int64_t q = a / b;
  return (a % b > 0) ? q + 1 : q;
}

// Transparent so find() takes a string_view without building a std::string. Deliberately not
// noexcept: libstdc++ then caches the hash in each node, so a bucket walk compares cached hashes
// instead of re-hashing every key it passes (the node is a 64-byte malloc chunk either way).
// TODO(ratelimit): std::hash is unseeded, so header-derived keys could be chosen to collide;
// the per-shard cap bounds the damage, a seeded hash (SipHash/rapidhash) would remove it.
struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

using KeyMap = std::unordered_map<std::string, std::int64_t, KeyHash, std::equal_to<>>;

}  // namespace

struct alignas(64) RateLimiter::Shard {  // own cache line: shards do not false-share locks
  std::mutex mu;
  KeyMap tat;  // key -> theoretical arrival time, ns since epoch

  // Frees at least cap/8 slots (min 1): expired entries first (they carry no state), then the
  // live entries with the smallest TAT (closest to full, so evicting them over-admits least).
  void make_room(std::size_t cap, std::int64_t now) {
    std::erase_if(tat, [now](const auto& kv) { return kv.second <= now; });
    const std::size_t target = cap - std::max<std::size_t>(1, cap / 8);
    if (tat.size() <= target) return;
    std::size_t excess = tat.size() - target;
    std::vector<std::int64_t> tats;
    tats.reserve(tat.size());
    for (const auto& kv : tat) tats.push_back(kv.second);
    auto nth = tats.begin() + static_cast<std::ptrdiff_t>(excess - 1);
    std::nth_element(tats.begin(), nth, tats.end());
    const std::int64_t threshold = *nth;
    // Strictly smaller first (fewer than `excess` of them), then ties in any order.
    excess -= std::erase_if(tat, [threshold](const auto& kv) { return kv.second < threshold; });
    for (auto it = tat.begin(); it != tat.end() && excess > 0;) {
      if (it->second == threshold) {
        it = tat.erase(it);
        --excess;
      } else {
        ++it;
      }
    }
  }
};

RateLimiter::RateLimiter(const config::RateLimitPolicy& policy, const core::Clock& clock,
                         std::size_t max_keys)
    : clock_(clock) {
  const std::uint64_t cap = policy.limit + policy.burst;
  limit_ = cap < policy.limit ? std::numeric_limits<std::uint64_t>::max() : cap;

  window_ns_ = std::clamp<std::int64_t>(policy.window.count() * 1'000'000, 1, kMaxSpanNs);
  if (policy.limit == 0) {
    limit_ = 0;
    interval_ns_ = window_ns_;
    capacity_ns_ = 0;
  } else {
    // Ceil: limit * T >= window, so no window ever sees more than `limit` refills.
    const std::uint64_t w = static_cast<std::uint64_t>(window_ns_);
    interval_ns_ = static_cast<std::int64_t>(w / policy.limit + (w % policy.limit != 0));
    const auto max_units = static_cast<std::uint64_t>(kMaxSpanNs / interval_ns_);
    capacity_ns_ = limit_ > max_units ? kMaxSpanNs
                                      : static_cast<std::int64_t>(limit_) * interval_ns_;
  }

  max_keys = std::max<std::size_t>(max_keys, 1);
  shard_count_ = std::clamp<std::size_t>(std::bit_floor(max_keys / kMinKeysPerShard), 1,
                                         kMaxShards);
  shard_shift_ = 64u - static_cast<unsigned>(std::countr_zero(shard_count_));
  shard_cap_ = max_keys / shard_count_;
  shards_ = std::make_unique<Shard[]>(shard_count_);
}

RateLimiter::~RateLimiter() = default;

RateLimiter::Shard& RateLimiter::shard_for(std::string_view key,
                                           std::size_t& hash) const noexcept {
  hash = std::hash<std::string_view>{}(key);
  if (shard_count_ == 1) return shards_[0];
  // Top bits after a multiplicative mix: the map's buckets use the low bits (hash % primes),
  // so shard choice and bucket choice stay independent.
  const std::uint64_t mixed = static_cast<std::uint64_t>(hash) * 0x9E3779B97F4A7C15ull;
  return shards_[static_cast<std::size_t>(mixed >> shard_shift_)];
}

Decision RateLimiter::check(std::string_view key) noexcept {
  Decision d;
  d.limit = limit_;

  if (limit_ == 0) {
    const std::int64_t now = clock_.now_ns();
    d.reset_after_s = 0;
    d.reset_epoch_s = ceil_div(now, kNsPerS);
    d.retry_after_s = std::max<std::int64_t>(1, ceil_div(window_ns_, kNsPerS));
    return d;
  }

  std::size_t hash = 0;
  Shard& shard = shard_for(key, hash);
  std::int64_t new_tat = 0;
  std::int64_t base = 0;
  std::int64_t now = 0;
  {
    std::lock_guard lock(shard.mu);
    // Read under the lock so the clock is monotonic across the key's updates: a `now` read before
    // waiting for the lock would be older than the one a later-locking thread already applied,
    // and the remaining count derived from it would come out one short (two admitted requests
    // reporting the same remaining). The read is a vDSO call, tens of nanoseconds.
    now = clock_.now_ns();
    auto it = shard.tat.find(key);
    const std::int64_t tat = it == shard.tat.end() ? now : it->second;
    base = std::max(tat, now);
    new_tat = base + interval_ns_;
    d.allowed = new_tat - now <= capacity_ns_;
    if (d.allowed) {
      if (it != shard.tat.end()) {
        it->second = new_tat;
      } else {
        try {
          if (shard.tat.size() >= shard_cap_) shard.make_room(shard_cap_, now);
          shard.tat.emplace(std::string(key), new_tat);
        } catch (...) {
          // Out of memory: admit untracked (fail-open for this key) rather than fail the request.
        }
      }
    }
  }

  if (d.allowed) {
    const std::int64_t full_in = new_tat - now;
    d.remaining = static_cast<std::uint64_t>((capacity_ns_ - full_in) / interval_ns_);
    d.reset_after_s = ceil_div(full_in, kNsPerS);
    d.reset_epoch_s = ceil_div(new_tat, kNsPerS);
    d.retry_after_s = 0;
  } else {
    // One more request fits once new_tat - now' <= capacity.
    d.remaining = 0;
    d.reset_after_s = ceil_div(base - now, kNsPerS);
    d.reset_epoch_s = ceil_div(base, kNsPerS);
    d.retry_after_s = std::max<std::int64_t>(1, ceil_div(new_tat - capacity_ns_ - now, kNsPerS));
  }
  return d;
}

std::size_t RateLimiter::tracked_keys() const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    n += shards_[i].tat.size();
  }
  return n;
}

std::string_view request_key(const config::RateLimitPolicy& policy, std::string_view client_ip,
                             std::string_view header_value, std::string_view route_name,
                             std::string& scratch) {
  switch (policy.key) {
    case config::RateLimitPolicy::Key::client_ip:
      return client_ip;
    case config::RateLimitPolicy::Key::route:
      return route_name;
    case config::RateLimitPolicy::Key::header:
      if (header_value.empty()) return client_ip;
      scratch.assign("h:");
      scratch.append(header_value);
      return scratch;
  }
  return client_ip;
}

}  // namespace problemgate::ratelimit
