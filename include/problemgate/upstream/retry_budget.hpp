#pragma once
#include <algorithm>
#include <cstdint>

namespace problemgate::upstream {

/// How many retries a worker may still make for one upstream (Envoy's retry budget, counted as
/// Finagle's RetryBudget does): every request deposits `percent` hundredths of a retry, every
/// retry withdraws a whole one, and the balance never exceeds `reserve` retries (at least one).
/// So over any stretch of time, retries <= percent % of requests + reserve: a dead upstream
/// costs at most that many extra requests, never a multiple of the load.
/// Not thread-safe: one per worker and upstream.
class RetryBudget {
 public:
  RetryBudget(std::uint32_t percent, std::uint32_t reserve) { configure(percent, reserve); }

  /// New settings (hot reload); the balance is capped, not refilled.
  void configure(std::uint32_t percent, std::uint32_t reserve) {
    percent_ = percent;
    cap_ = std::max<std::uint64_t>(reserve, 1) * kRetry;
    if (!configured_) balance_ = static_cast<std::uint64_t>(reserve) * kRetry;
    balance_ = std::min(balance_, cap_);
    configured_ = true;
  }
  void on_request() noexcept { balance_ = std::min(cap_, balance_ + percent_); }
  /// Takes one retry from the balance; false when it is spent.
  bool try_retry() noexcept {
    if (balance_ < kRetry) return false;
    balance_ -= kRetry;
    return true;
  }
  std::uint64_t balance_hundredths() const noexcept { return balance_; }

 private:
  static constexpr std::uint64_t kRetry = 100;
  std::uint64_t balance_ = 0;
  std::uint64_t cap_ = kRetry;
  std::uint32_t percent_ = 0;
  bool configured_ = false;
};

}  // namespace problemgate::upstream
