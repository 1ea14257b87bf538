#pragma once
#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "problemgate/config/config.hpp"
#include "problemgate/upstream/cluster.hpp"
#include "problemgate/upstream/pool.hpp"
#include "problemgate/upstream/retry_budget.hpp"

namespace problemgate::upstream {

/// One worker's view of one upstream: a connection pool per endpoint of the Cluster's current
/// set, the choice of endpoint per request (round robin, or least request by the power of two
/// choices over this worker's requests in flight) and this worker's retry budget.
///
/// Not thread-safe, like the pools: made and used on its worker's thread only. When the
/// cluster's set changes (DNS), the next pick() rebuilds the pool list: pools of endpoints
/// still present are kept, the others retired (requests on them finish; see UpstreamPool).
class Balancer {
 public:
  Balancer(boost::asio::any_io_executor ex, std::shared_ptr<Cluster> cluster,
           config::Upstream settings, std::uint64_t seed = 0x9e3779b97f4a7c15ULL);

  Cluster& cluster() const noexcept { return *cluster_; }
  const std::shared_ptr<Cluster>& cluster_ptr() const noexcept { return cluster_; }
  const config::Upstream& settings() const noexcept { return settings_; }

  /// The pool of the endpoint for the next try, skipping endpoints in `tried`; null when none
  /// is left. When no endpoint at all is available (ejected or unhealthy), every endpoint is
  /// eligible again and `panic` is set (Envoy's panic routing: some traffic beats none).
  const std::shared_ptr<UpstreamPool>* pick(std::int64_t now_ns,
                                            std::span<const EndpointState* const> tried,
                                            bool& panic);

  RetryBudget& budget() noexcept { return budget_; }

  /// Hot reload: new pool settings (timeouts, max_connections), lb and budget.
  void update(config::Upstream settings);
  /// Pools of the current set (sweeps, drains, tests).
  const std::vector<std::shared_ptr<UpstreamPool>>& pools() {
    refresh();
    return pools_;
  }
  /// Connections of every endpoint's pool on this worker (open includes idle), for gauges.
  std::size_t open_count() const noexcept {
    std::size_t n = 0;
    for (const auto& p : pools_) n += p->open_count();
    return n;
  }
  std::size_t idle_count() const noexcept {
    std::size_t n = 0;
    for (const auto& p : pools_) n += p->idle_count();
    return n;
  }
  void sweep();
  void close_idle();
  void retire();

 private:
  void refresh();
  const std::shared_ptr<UpstreamPool>* choose(std::int64_t now_ns,
                                              std::span<const EndpointState* const> tried,
                                              bool ignore_health);
  bool eligible(std::size_t i, std::int64_t now_ns, std::span<const EndpointState* const> tried,
                bool ignore_health) const;
  std::uint64_t next_random() noexcept {
    // xorshift64*: cheap, per worker, good enough to spread two choices.
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 0x2545F4914F6CDD1DULL;
  }

  boost::asio::any_io_executor ex_;
  std::shared_ptr<Cluster> cluster_;
  config::Upstream settings_;
  std::vector<std::shared_ptr<UpstreamPool>> pools_;  // one per endpoint, in the set's order
  std::uint64_t version_ = 0;
  std::size_t next_ = 0;  // round robin position
  std::uint64_t rng_;
  RetryBudget budget_;
};

}  // namespace problemgate::upstream
