#pragma once
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace problemgate::upstream {

/// Nanoseconds of the steady clock: the time base of ejections (injected in tests).
inline std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// One address of an upstream and what the process knows about it. Shared by every worker
/// (each has its own connection pool for it) and the cluster's checker, so everything that
/// changes is an atomic or guarded by the Cluster's mutex; see each field.
struct EndpointState {
  EndpointState(boost::asio::ip::tcp::endpoint a, std::string auth);

  const boost::asio::ip::tcp::endpoint address;
  const std::string label;      ///< "10.0.0.5:8000" or "[::1]:8000": logs, metrics, Proxy-Status
  const std::string authority;  ///< the configured host:port it came from (Host of health checks)

  // Passive outlier detection, written by any worker (relaxed: a count off by a racing
  // request only moves an ejection by one failure).
  std::atomic<std::uint32_t> consecutive_failures{0};
  std::atomic<std::int64_t> ejected_until_ns{0};  ///< steady ns; in the past = not ejected
  // Active health checks: written by the checker thread, read by workers.
  std::atomic<bool> healthy{true};

  // Guarded by the Cluster's mutex.
  std::uint32_t ejections = 0;  ///< consecutive ejections: each doubles the ejection time
  // The checker thread's only.
  std::uint32_t check_passes = 0;
  std::uint32_t check_failures = 0;

  bool ejected(std::int64_t now_ns) const noexcept {
    return ejected_until_ns.load(std::memory_order_relaxed) > now_ns;
  }
  /// Takes traffic: healthy (or never checked) and not ejected.
  bool available(std::int64_t now_ns) const noexcept {
    return healthy.load(std::memory_order_relaxed) && !ejected(now_ns);
  }
};

using EndpointList = std::vector<std::shared_ptr<EndpointState>>;

/// An address from resolving a configured target, with the target's host:port.
struct ResolvedAddress {
  boost::asio::ip::tcp::endpoint address;
  std::string authority;
};

}  // namespace problemgate::upstream
