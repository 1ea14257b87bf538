#include "proxy/cluster_metrics.hpp"

#include "problemgate/obs/metrics.hpp"
#include "problemgate/upstream/endpoint.hpp"

namespace problemgate::proxy {

namespace {

void sample(std::string& out, std::string_view name, std::string_view upstream,
            std::string_view extra_name, std::string_view extra_value, std::uint64_t v,
            std::string_view extra2_name = {}, std::string_view extra2_value = {}) {
  out.append(name).append("{upstream=\"");
  obs::append_label_value(out, upstream);
  out.append("\"");
  if (!extra_name.empty()) {
    out.append(",").append(extra_name).append("=\"");
    obs::append_label_value(out, extra_value);
    out.append("\"");
  }
  if (!extra2_name.empty()) {
    out.append(",").append(extra2_name).append("=\"");
    obs::append_label_value(out, extra2_value);
    out.append("\"");
  }
  out.append("} ").append(std::to_string(v)).append("\n");
}

std::uint64_t get(const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); }

}  // namespace

void render_cluster_metrics(const Runtime& rt, std::string& out) {
  const auto now = upstream::steady_now_ns();
  obs::append_metric_header(
      out, "problemgate_upstream_endpoint_state", "gauge",
      "1 for each endpoint's current state: available, ejected (outlier detection) or unhealthy (health checks).");
  for (const auto& c : rt.clusters) {
    for (const auto& ep : *c->endpoints()) {
      const bool ejected = ep->ejected(now);
      const bool healthy = ep->healthy.load(std::memory_order_relaxed);
      for (const auto* state : {"available", "ejected", "unhealthy"}) {
        const std::string_view s = state;
        const bool on = s == "available" ? (!ejected && healthy)
                        : s == "ejected" ? ejected
                                         : !healthy;
        sample(out, "problemgate_upstream_endpoint_state", c->name(), "endpoint", ep->label,
               on ? 1 : 0, "state", s);
      }
    }
  }
  obs::append_metric_header(
      out, "problemgate_upstream_panic", "gauge",
      "1 while no endpoint of the upstream is available: requests go to all of them (panic routing).");
  for (const auto& c : rt.clusters) {
    bool all = false;
    c->unavailable(now, all);
    sample(out, "problemgate_upstream_panic", c->name(), {}, {}, all ? 1 : 0);
  }
  obs::append_metric_header(out, "problemgate_upstream_panic_requests_total", "counter",
                            "Requests routed while no endpoint was available (panic routing).");
  for (const auto& c : rt.clusters)
    sample(out, "problemgate_upstream_panic_requests_total", c->name(), {}, {},
           get(c->counters.panic_requests));
  obs::append_metric_header(out, "problemgate_upstream_ejections_total", "counter",
                            "Endpoints ejected by outlier detection (consecutive failures).");
  for (const auto& c : rt.clusters)
    sample(out, "problemgate_upstream_ejections_total", c->name(), {}, {},
           get(c->counters.ejections));
  obs::append_metric_header(
      out, "problemgate_upstream_ejections_refused_total", "counter",
      "Ejections not made because outlier.max_ejected_percent of the endpoints were ejected already.");
  for (const auto& c : rt.clusters)
    sample(out, "problemgate_upstream_ejections_refused_total", c->name(), {}, {},
           get(c->counters.ejections_refused));
  obs::append_metric_header(out, "problemgate_upstream_endpoint_retries_total", "counter",
                            "Requests retried on another endpoint, by the failure that caused it.");
  for (const auto& c : rt.clusters) {
    sample(out, "problemgate_upstream_endpoint_retries_total", c->name(), "reason",
           "connect_failure", get(c->counters.retries_connect));
    sample(out, "problemgate_upstream_endpoint_retries_total", c->name(), "reason",
           "reset_before_response", get(c->counters.retries_reset));
  }
  obs::append_metric_header(
      out, "problemgate_upstream_retry_budget_exhausted_total", "counter",
      "Retries not made because the retry budget (retries.budget_percent) was spent.");
  for (const auto& c : rt.clusters)
    sample(out, "problemgate_upstream_retry_budget_exhausted_total", c->name(), {}, {},
           get(c->counters.budget_exhausted));
  obs::append_metric_header(
      out, "problemgate_upstream_resolve_failures_total", "counter",
      "DNS resolutions of the upstream's names that failed (the last good endpoint set was kept).");
  for (const auto& c : rt.clusters)
    sample(out, "problemgate_upstream_resolve_failures_total", c->name(), {}, {},
           get(c->counters.resolve_failures));
  obs::append_metric_header(out, "problemgate_upstream_health_checks_total", "counter",
                            "Active health checks by result.");
  for (const auto& c : rt.clusters) {
    if (!c->settings().health_check) continue;
    sample(out, "problemgate_upstream_health_checks_total", c->name(), "result", "passed",
           get(c->counters.checks_passed));
    sample(out, "problemgate_upstream_health_checks_total", c->name(), "result", "failed",
           get(c->counters.checks_failed));
  }
}

}  // namespace problemgate::proxy
