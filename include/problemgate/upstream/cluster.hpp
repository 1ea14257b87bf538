#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "problemgate/config/config.hpp"
#include "problemgate/upstream/endpoint.hpp"

namespace problemgate::upstream {

/// Process-wide counters of one upstream (rare events only: the request path never touches
/// them unless something failed).
struct ClusterCounters {
  std::atomic<std::uint64_t> ejections{0};
  std::atomic<std::uint64_t> ejections_refused{0};  ///< max_ejected_percent kept one in
  std::atomic<std::uint64_t> retries_connect{0};
  std::atomic<std::uint64_t> retries_reset{0};
  std::atomic<std::uint64_t> budget_exhausted{0};
  std::atomic<std::uint64_t> panic_requests{0};  ///< routed while no endpoint was available
  std::atomic<std::uint64_t> resolve_failures{0};
  std::atomic<std::uint64_t> checks_failed{0};
  std::atomic<std::uint64_t> checks_passed{0};
};

/// One upstream as the whole process sees it: its current endpoint set (replaced atomically
/// when DNS answers change), each endpoint's outlier and health state, and counters. Shared by
/// every worker's Balancer and by the ClusterManager's resolver and checker. Thread-safe.
///
/// Time is passed in (steady ns), so tests drive ejections with a hand-moved clock.
class Cluster {
 public:
  /// Resolves the targets once now: literal addresses at once, names through `hosts_file` (when
  /// not empty) and the system resolver. Blocking: called at start-up and on reload, never on
  /// a worker. A name that does not resolve leaves the set without it (and says so).
  ///
  /// `tls`: the client context of an https:// upstream (http1::make_client_context), null for
  /// http://. It belongs to this cluster alone: a TLS setting that changes makes a new Cluster,
  /// so two upstreams, or two versions of one, never share a context, session or connection.
  Cluster(config::Upstream settings, std::string hosts_file = {},
          std::shared_ptr<boost::asio::ssl::context> tls = nullptr);

  const config::Upstream& settings() const noexcept { return settings_; }
  const std::string& name() const noexcept { return settings_.name; }
  const std::string& hosts_file() const noexcept { return hosts_file_; }
  /// The TLS client context (https:// upstreams), or null. SSL_CTX is safe to share across
  /// threads for making connections.
  const std::shared_ptr<boost::asio::ssl::context>& tls_context() const noexcept { return tls_; }

  /// Changes whenever the endpoint set does; a worker compares it with the one it built its
  /// pools for (one acquire load per request).
  std::uint64_t version() const noexcept { return version_.load(std::memory_order_acquire); }
  std::shared_ptr<const EndpointList> endpoints() const;
  /// True when a target is a DNS name (worth re-resolving).
  bool has_names() const noexcept { return has_names_; }

  /// Replaces the set (states of addresses still present are kept). Returns true on a change.
  bool set_addresses(const std::vector<ResolvedAddress>& addresses);
  /// Resolves every target (blocking). False, with the set untouched, when any name failed: a
  /// partial answer would drop endpoints that are still there.
  bool resolve(std::vector<ResolvedAddress>& out, std::string& error) const;
  /// resolve() then set_addresses(); logs a failure once per failing streak, and the recovery.
  void refresh();

  /// A response that counts as success resets the endpoint's consecutive failures.
  static void record_success(EndpointState& e) noexcept {
    if (e.consecutive_failures.load(std::memory_order_relaxed) != 0)
      e.consecutive_failures.store(0, std::memory_order_relaxed);
  }
  /// A connect error, reset or 502/503/504: ejects the endpoint at `consecutive_failures`, for
  /// ejection_time doubled per consecutive ejection (capped at kMaxEjection), unless that
  /// would eject more than max_ejected_percent of the set. True when it was ejected now.
  bool record_failure(EndpointState& e, std::int64_t now_ns);
  /// One active check's result (checker thread only); flips `healthy` at the thresholds.
  void record_check(EndpointState& e, bool passed);

  /// Endpoints not available at `now_ns` (ejected or unhealthy), and whether that is all.
  std::size_t unavailable(std::int64_t now_ns, bool& all) const;

  ClusterCounters counters;
  static constexpr std::int64_t kMaxEjectionNs = 300'000'000'000;  // 5 minutes, as Envoy's default

 private:
  config::Upstream settings_;
  std::string hosts_file_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  bool has_names_ = false;
  mutable std::mutex mutex_;
  std::shared_ptr<const EndpointList> endpoints_;  // guarded by mutex_
  std::atomic<std::uint64_t> version_{1};
  bool resolve_failing_ = false;  // the resolver thread's (logs a failing streak once)
};

}  // namespace problemgate::upstream
