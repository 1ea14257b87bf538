#include "proxy/worker_snapshot.hpp"

#include <algorithm>

namespace problemgate::proxy {

namespace {

bool same_address(const config::Upstream& a, const config::Upstream& b) {
  return a.host == b.host && a.port == b.port;
}

/// The pool of `previous` that `up` can keep using: same name and address, else null.
std::shared_ptr<upstream::UpstreamPool> reusable_pool(const WorkerSnapshot* previous,
                                                      const config::Upstream& up) {
  if (!previous) return nullptr;
  for (const auto& pool : previous->pools()) {
    const auto& old = pool->settings();
    if (old.name == up.name) return same_address(old, up) ? pool : nullptr;
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
  const auto& cfg = snap->runtime_->config;
  for (const auto& up : cfg.upstreams) {
    auto pool = reusable_pool(previous, up);
    if (pool) pool->update(up);
    else pool = std::make_shared<upstream::UpstreamPool>(ex, up);
    snap->pools_.push_back(std::move(pool));
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
    // A pool left behind may still be in use by requests of older snapshots; they finish on
    // it, but nothing it holds may reach a request of this one (it may be the old address).
    for (const auto& old : previous->pools()) {
      if (std::find(snap->pools_.begin(), snap->pools_.end(), old) == snap->pools_.end()) old->retire();
    }
  }
  return snap;
}

}  // namespace problemgate::proxy
