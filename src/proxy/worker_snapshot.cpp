#include "proxy/worker_snapshot.hpp"

#include <algorithm>

namespace problemgate::proxy {

namespace {

/// The balancer of `previous` that `cluster` can keep using: the same Cluster, else null.
std::shared_ptr<upstream::Balancer> reusable_balancer(const WorkerSnapshot* previous,
                                                      const upstream::Cluster* cluster) {
  if (!previous) return nullptr;
  for (const auto& b : previous->balancers()) {
    if (&b->cluster() == cluster) return b;
  }
  return nullptr;
}

bool same_store(const config::RateLimitStore& a, const config::RateLimitStore& b) {
  return a.type == b.type && a.url == b.url && a.timeout == b.timeout && a.on_error == b.on_error &&
         a.key_prefix == b.key_prefix && a.pool_size == b.pool_size;
}

}  // namespace

std::shared_ptr<const WorkerSnapshot> WorkerSnapshot::make(std::shared_ptr<const Runtime> runtime,
                                                           const WorkerSnapshot* previous,
                                                           const boost::asio::any_io_executor& ex,
                                                           obs::WorkerMetrics& metrics,
                                                           redis::StoreHealth& store_health) {
  std::shared_ptr<WorkerSnapshot> snap(new WorkerSnapshot(std::move(runtime)));
  const auto& rt = *snap->runtime_;
  const auto& cfg = rt.config;
  for (std::size_t i = 0; i < cfg.upstreams.size(); ++i) {
    const auto& up = cfg.upstreams[i];
    auto balancer = reusable_balancer(previous, rt.clusters[i].get());
    if (balancer)
      balancer->update(up);
    else
      balancer =
          std::make_shared<upstream::Balancer>(ex, rt.clusters[i], up, 0x9e3779b97f4a7c15ULL + i);
    snap->balancers_.push_back(std::move(balancer));
    snap->upstream_counters_.push_back(&metrics.upstream(up.name));
  }
  for (const auto& r : cfg.routes) snap->route_counters_.push_back(&metrics.route(r.name));
  snap->no_route_counters_ = &metrics.route("");
  const auto& store = cfg.rate_limit_store;
  if (store.type == config::RateLimitStore::Type::redis) {
    if (previous && previous->store_ && same_store(previous->store_->settings(), store)) {
      snap->store_ = previous->store_;
    } else {
      // A new client; the old one (if any) serves the checks in flight of older snapshots and
      // closes its connections when the last of them is done.
      snap->store_ = std::make_shared<redis::StoreClient>(ex, store, snap->runtime_->limiter_key,
                                                          metrics.store(), store_health);
      snap->store_->start();
    }
  }
  if (previous) {
    // A balancer left behind may still be in use by requests of older snapshots; they finish
    // on its pools, but nothing they hold may reach a request of this one (it may be the old
    // address).
    for (const auto& old : previous->balancers()) {
      if (std::find(snap->balancers_.begin(), snap->balancers_.end(), old) ==
          snap->balancers_.end())
        old->retire();
    }
  }
  return snap;
}

}  // namespace problemgate::proxy
