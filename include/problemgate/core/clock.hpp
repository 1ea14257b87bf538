#pragma once
#include <chrono>
#include <cstdint>

namespace problemgate::core {

/// Source of wall-clock time. Injected into pure units (rate limiter, request ids) so tests
/// move time by hand. Implementations must be safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Nanoseconds since the Unix epoch.
  virtual std::int64_t now_ns() const noexcept = 0;
  std::int64_t now_ms() const noexcept { return now_ns() / 1'000'000; }
};

/// The real clock (std::chrono::system_clock).
class SystemClock final : public Clock {
 public:
  std::int64_t now_ns() const noexcept override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

/// A clock that only moves when told to. Not thread-safe; for tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::int64_t start_ns = 1'700'000'000'000'000'000) : now_(start_ns) {}
  std::int64_t now_ns() const noexcept override { return now_; }
  void advance_ms(std::int64_t ms) noexcept { now_ += ms * 1'000'000; }
  void advance_ns(std::int64_t ns) noexcept { now_ += ns; }
  void set_ns(std::int64_t ns) noexcept { now_ = ns; }

 private:
  std::int64_t now_;
};

}  // namespace problemgate::core
