#include "problemgate/obs/metrics.hpp"

#include <doctest/doctest.h>

using namespace problemgate::obs;

TEST_SUITE("obs.metrics") {
  TEST_CASE("per-worker counters are merged on render") {
    Metrics m(2);
    bump(m.worker(0).route("api").requests[static_cast<std::size_t>(MethodLabel::get)][1]);
    bump(m.worker(1).route("api").requests[static_cast<std::size_t>(MethodLabel::get)][1], 2);
    m.worker(0).route("api").duration.observe(0.003);
    m.worker(1).count_rewrite("api", "flat", "resource_not_found", "agent_not_found");
    m.worker(0).count_rewrite("api", "flat", "resource_not_found", "agent_not_found");
    const std::string text = m.render(7);
    CHECK(text.find("problemgate_requests_total{route=\"api\",method=\"GET\",status_class=\"2xx\"} 3\n") != std::string::npos);
    CHECK(text.find("problemgate_request_duration_seconds_bucket{route=\"api\",le=\"0.005\"} 1\n") != std::string::npos);
    CHECK(text.find("problemgate_request_duration_seconds_bucket{route=\"api\",le=\"0.0025\"} 0\n") != std::string::npos);
    CHECK(text.find("problemgate_rewritten_errors_total{route=\"api\",dialect=\"flat\",code=\"resource_not_found\",subcode=\"agent_not_found\"} 2\n") != std::string::npos);
    CHECK(text.find("problemgate_client_connections 7\n") != std::string::npos);
  }
  TEST_CASE("tunnel series: open gauge, opened and closed by reason, summed over workers") {
    Metrics m(2);
    auto& a = m.worker(0).route("ws");
    auto& b = m.worker(1).route("ws");
    bump(a.tunnels_opened, 2);
    bump(a.tunnels_open);
    bump(b.tunnels_opened);
    bump(a.tunnels_closed[static_cast<std::size_t>(TunnelClose::idle_timeout)]);
    bump(b.tunnels_closed[static_cast<std::size_t>(TunnelClose::drain)]);
    bump(b.upgrades_refused);
    const std::string text = m.render(0);
    CHECK(text.find("problemgate_tunnels_open{route=\"ws\"} 1\n") != std::string::npos);
    CHECK(text.find("problemgate_tunnels_total{route=\"ws\"} 3\n") != std::string::npos);
    CHECK(text.find("problemgate_tunnels_closed_total{route=\"ws\",reason=\"idle_timeout\"} 1\n") != std::string::npos);
    CHECK(text.find("problemgate_tunnels_closed_total{route=\"ws\",reason=\"drain\"} 1\n") != std::string::npos);
    CHECK(text.find("problemgate_tunnels_closed_total{route=\"ws\",reason=\"client_closed\"} 0\n") != std::string::npos);
    CHECK(text.find("problemgate_upgrades_refused_total{route=\"ws\"} 1\n") != std::string::npos);
  }
  TEST_CASE("label values are escaped") {
    std::string out;
    append_label_value(out, "a\"b\\c\nd");
    CHECK(out == "a\\\"b\\\\c\\nd");
  }
  TEST_CASE("rewrite label sets are capped") {
    Metrics m(1);
    for (std::size_t i = 0; i < WorkerMetrics::kMaxRewriteSeries + 50; ++i)
      m.worker(0).count_rewrite("r", "json", "client_error", "code_" + std::to_string(i));
    const std::string text = m.render(0);
    CHECK(text.find("subcode=\"other\"} 50\n") != std::string::npos);
  }
}
