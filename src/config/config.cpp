#include "problemgate/config/config.hpp"

#include <thread>

namespace problemgate::config {

unsigned Config::worker_threads() const noexcept {
  if (threads != 0) return threads;
  // hardware_concurrency may report 0 when unknown (some containers).
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

}  // namespace problemgate::config
