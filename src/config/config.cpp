#include "problemgate/config/config.hpp"

#include <thread>

namespace problemgate::config {

bool Cidr::contains(const std::array<std::uint8_t, 16>& a) const noexcept {
  const int full = prefix / 8;
  for (int i = 0; i < full; ++i) {
    if (a[static_cast<std::size_t>(i)] != addr[static_cast<std::size_t>(i)]) return false;
  }
  const int rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  const auto i = static_cast<std::size_t>(full);
  return (a[i] & mask) == (addr[i] & mask);
}

unsigned Config::worker_threads() const noexcept {
  if (threads != 0) return threads;
  // hardware_concurrency may report 0 when unknown (some containers).
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

}  // namespace problemgate::config
