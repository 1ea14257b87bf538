#pragma once
#include <string>

#include "proxy/runtime.hpp"

namespace problemgate::proxy {

/// Appends the process-wide upstream metrics of `rt`'s clusters (endpoint states, ejections,
/// retries by reason, retry budget exhaustion, panic routing, DNS and health checks) to the
/// Prometheus text in `out`. Counters of a cluster replaced by a reload start again from 0 (a
/// counter reset, which rate() handles).
void render_cluster_metrics(const Runtime& rt, std::string& out);

}  // namespace problemgate::proxy
