#include "problemgate/ratelimit/rate_limiter.hpp"

#include <algorithm>
#include <bit>
#include <limits>
#include <mutex>
#include <new>
#include <type_traits>
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
// ~59 bytes per key whatever the key's text (IPv4, IPv6, a 30 KB header value: 59-60 each): a
// 48-byte malloc chunk per node (next, 16-byte digest, TAT) plus the bucket array, so ~59 MB for
// 1,000,000 live keys.
[[maybe_unused]] constexpr std::size_t kMeasuredBytesPerKey = 59;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) noexcept {
  // b > 0. Rounds toward +infinity for either sign of a.
  std::int64_t q = a / b;
  return (a % b > 0) ? q + 1 : q;
}

// The digest is already a keyed hash, uniform over 128 bits: its low word is the bucket hash
// as is. noexcept and cheap, so libstdc++ does not cache it in the node (the node stays 32 bytes).
struct DigestHash {
  std::size_t operator()(const KeyDigest& d) const noexcept {
    return static_cast<std::size_t>(d.lo);
  }
};

using KeyMap = std::unordered_map<KeyDigest, std::int64_t, DigestHash>;

// State keyed by client input must have a fixed size per key: nothing in an entry may point
// at more memory.
static_assert(std::is_trivially_destructible_v<KeyMap::value_type>);
static_assert(sizeof(KeyMap::value_type) == sizeof(KeyDigest) + sizeof(std::int64_t));

}  // namespace

struct alignas(64) RateLimiter::Shard {  // own cache line: shards do not false-share locks
  std::mutex mu;
  KeyMap tat;  // key digest -> theoretical arrival time, ns since epoch

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
                         const HashKey& hash_key, std::size_t max_keys)
    : clock_(clock), hash_key_(hash_key) {
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
    capacity_ns_ =
        limit_ > max_units ? kMaxSpanNs : static_cast<std::int64_t>(limit_) * interval_ns_;
  }

  max_keys = std::max<std::size_t>(max_keys, 1);
  shard_count_ =
      std::clamp<std::size_t>(std::bit_floor(max_keys / kMinKeysPerShard), 1, kMaxShards);
  shard_shift_ = 64u - static_cast<unsigned>(std::countr_zero(shard_count_));
  shard_cap_ = max_keys / shard_count_;
  shards_ = std::make_unique<Shard[]>(shard_count_);
}

RateLimiter::~RateLimiter() = default;

KeyDigest RateLimiter::digest(const LimitKey& key) const noexcept {
  SipHash128 h(hash_key_);
  // The kind's byte first: an ip and a header value spelling it are different messages.
  const char kind = static_cast<char>(key.kind);
  h.update(std::string_view(&kind, 1));
  h.update(key.text);
  return h.finish();
}

RateLimiter::Shard& RateLimiter::shard_for(const StoredKey& key) const noexcept {
  if (shard_count_ == 1) return shards_[0];
  // The digest's high word: the map's buckets use the low one, so shard choice and bucket
  // choice stay independent.
  return shards_[static_cast<std::size_t>(key.hi >> shard_shift_)];
}

Decision RateLimiter::check(const LimitKey& key) noexcept {
  Decision d;
  d.limit = limit_;

  if (limit_ == 0) {
    const std::int64_t now = clock_.now_ns();
    d.reset_after_s = 0;
    d.reset_epoch_s = ceil_div(now, kNsPerS);
    d.retry_after_s = std::max<std::int64_t>(1, ceil_div(window_ns_, kNsPerS));
    return d;
  }

  const StoredKey stored = digest(key);
  Shard& shard = shard_for(stored);
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
    auto it = shard.tat.find(stored);
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
          shard.tat.emplace(stored, new_tat);
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

LimitKey request_key(const config::RateLimitPolicy& policy, std::string_view client_ip,
                     std::string_view header_value, std::string_view route_name) noexcept {
  using Key = config::RateLimitPolicy::Key;
  switch (policy.key) {
    case Key::client_ip: return {Key::client_ip, client_ip};
    case Key::route: return {Key::route, route_name};
    case Key::header:
      if (header_value.empty()) return {Key::client_ip, client_ip};
      return {Key::header, header_value};
  }
  return {Key::client_ip, client_ip};
}

}  // namespace problemgate::ratelimit
