#pragma once
#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <vector>

#include "problemgate/obs/metrics.hpp"
#include "problemgate/redis/store_client.hpp"
#include "problemgate/upstream/balancer.hpp"
#include "proxy/runtime.hpp"

namespace problemgate::proxy {

/// One worker's binding of one Runtime: the runtime plus this worker's upstream pools and
/// metric counters for its upstreams and routes, indexed like its config.
///
/// Ownership is what makes hot reload safe. A request holds the snapshot it is served by (one
/// shared_ptr, taken by the session) until it is done, and everything it uses while suspended
/// (pools, counters, routes) hangs off that snapshot. A reload makes a new snapshot; the old
/// one, with the pools that only it still references, dies with the last request holding it.
/// Pools are shared between consecutive snapshots when an upstream keeps its name and address,
/// so their idle connections survive the reload. Each upstream has a Balancer here: one pool
/// per endpoint, the endpoint choice and the worker's retry budget.
///
/// Not thread-safe, like the pools: made and used on its worker's thread only.
class WorkerSnapshot {
 public:
  /// The snapshot of `runtime` that follows `previous` (null for the first one). Balancers
  /// (with their per-endpoint pools) of `previous` whose upstream kept its Cluster (name,
  /// endpoints, outlier and health settings: see Runtime) are carried over (settings
  /// refreshed); the others are retired: no idle connection of theirs is handed out again.
  static std::shared_ptr<const WorkerSnapshot> make(std::shared_ptr<const Runtime> runtime,
                                                    const WorkerSnapshot* previous,
                                                    const boost::asio::any_io_executor& ex,
                                                    obs::WorkerMetrics& metrics,
                                                    redis::StoreHealth& store_health);

  const Runtime& runtime() const noexcept { return *runtime_; }
  /// This worker's client of the shared rate-limit store; null with `type: local`. Kept
  /// across reloads that leave rate_limit_store as it was.
  redis::StoreClient* store() const noexcept { return store_.get(); }
  upstream::Balancer& balancer(std::size_t upstream_index) const noexcept {
    return *balancers_[upstream_index];
  }
  /// Counters for a route of this runtime (nullptr: requests that matched none).
  obs::RouteCounters& route_counters(const config::Route* route) const noexcept {
    return route ? *route_counters_[runtime_->route_index(route)] : *no_route_counters_;
  }
  obs::UpstreamCounters& upstream_counters(std::size_t upstream_index) const noexcept {
    return *upstream_counters_[upstream_index];
  }
  /// Indexed like runtime().config.upstreams (sweeps and drains go through these).
  const std::vector<std::shared_ptr<upstream::Balancer>>& balancers() const noexcept {
    return balancers_;
  }

 private:
  // Private: make() is the only way in, so a snapshot is always shared_ptr-held.
  explicit WorkerSnapshot(std::shared_ptr<const Runtime> runtime) : runtime_(std::move(runtime)) {}

  std::shared_ptr<const Runtime> runtime_;
  std::vector<std::shared_ptr<upstream::Balancer>> balancers_;
  std::shared_ptr<redis::StoreClient> store_;
  // Counter objects never move or die (WorkerMetrics keeps them in deques): plain pointers.
  std::vector<obs::RouteCounters*> route_counters_;
  std::vector<obs::UpstreamCounters*> upstream_counters_;
  obs::RouteCounters* no_route_counters_ = nullptr;
};

}  // namespace problemgate::proxy
