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

}  // namespace

std::shared_ptr<const WorkerSnapshot> WorkerSnapshot::make(std::shared_ptr<const Runtime> runtime,
                                                           const WorkerSnapshot* previous,
                                                           const boost::asio::any_io_executor& ex,
                                                           obs::WorkerMetrics& metrics) {
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
