#include "problemgate/obs/metrics.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace problemgate::obs;

TEST_SUITE("obs.metrics") {
  TEST_CASE("per-worker counters are merged on render") {
    Metrics m(2);
    bump(m.worker(0).route("api").requests[static_cast<std::size_t>(MethodLabel::get)][200 - 100]);
    bump(m.worker(1).route("api").requests[static_cast<std::size_t>(MethodLabel::get)][200 - 100],
         2);
    bump(m.worker(1).route("api").requests[static_cast<std::size_t>(MethodLabel::post)][429 - 100]);
    m.worker(0).route("api").duration[status_class_index(200)].observe(0.003);
    m.worker(1).count_rewrite("api", "flat", "resource_not_found", "agent_not_found");
    m.worker(0).count_rewrite("api", "flat", "resource_not_found", "agent_not_found");
    const std::string text = m.render(7);
    CHECK(
        text.find(
            "problemgate_requests_total{route=\"api\",method=\"GET\",code=\"200\",status_class=\"2xx\"} 3\n") !=
        std::string::npos);
    CHECK(
        text.find(
            "problemgate_requests_total{route=\"api\",method=\"POST\",code=\"429\",status_class=\"4xx\"} 1\n") !=
        std::string::npos);
    CHECK(
        text.find(
            "problemgate_request_duration_seconds_bucket{route=\"api\",status_class=\"2xx\",le=\"0.005\"} 1\n") !=
        std::string::npos);
    CHECK(
        text.find(
            "problemgate_request_duration_seconds_bucket{route=\"api\",status_class=\"2xx\",le=\"0.0025\"} 0\n") !=
        std::string::npos);
    CHECK(
        text.find(
            "problemgate_request_duration_seconds_bucket{route=\"api\",status_class=\"2xx\",le=\"60\"} 1\n") !=
        std::string::npos);
    CHECK(
        text.find(
            "problemgate_request_duration_seconds_count{route=\"api\",status_class=\"2xx\"} 1\n") !=
        std::string::npos);
    CHECK(
        text.find(
            "problemgate_rewritten_errors_total{route=\"api\",dialect=\"flat\",code=\"resource_not_found\",subcode=\"agent_not_found\"} 2\n") !=
        std::string::npos);
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
    CHECK(text.find("problemgate_tunnels_closed_total{route=\"ws\",reason=\"idle_timeout\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("problemgate_tunnels_closed_total{route=\"ws\",reason=\"drain\"} 1\n") !=
          std::string::npos);
    CHECK(
        text.find("problemgate_tunnels_closed_total{route=\"ws\",reason=\"client_closed\"} 0\n") !=
        std::string::npos);
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
  TEST_CASE("latency buckets reach past the default upstream timeout (30 s) to 60 s") {
    CHECK(Histogram::kBounds.back() == 60.0);
    CHECK(std::find(Histogram::kBounds.begin(), Histogram::kBounds.end(), 30.0) !=
          Histogram::kBounds.end());
    Histogram h;
    h.observe(31.0);
    h.observe(61.0);
    const auto c = h.counts();
    CHECK(c[Histogram::kBounds.size() - 1] == 1);  // (30, 60]
    CHECK(c.back() == 1);                          // +Inf
  }
  TEST_CASE("build info, reload state, bytes, connect latency and process metrics are exposed") {
    Metrics m(1);
    m.build_version = "1.2.3";
    m.build_commit = "abc1234";
    m.last_reload_success_s = 1'700'000'000;
    bump(m.worker(0).route("api").request_bytes, 120);
    bump(m.worker(0).route("api").response_bytes, 480);
    m.worker(0).upstream("legacy").connect_duration.observe(0.0004);
    m.worker(0).route("api").upstream_response_head[status_class_index(503)].observe(0.2);
    const std::string text = m.render(0);
    CHECK(text.find("problemgate_build_info{version=\"1.2.3\",commit=\"abc1234\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("problemgate_config_last_reload_successful 1\n") != std::string::npos);
    CHECK(text.find("problemgate_config_last_reload_success_timestamp_seconds 1700000000\n") !=
          std::string::npos);
    CHECK(text.find("problemgate_request_bytes_total{route=\"api\"} 120\n") != std::string::npos);
    CHECK(text.find("problemgate_response_bytes_total{route=\"api\"} 480\n") != std::string::npos);
    CHECK(
        text.find(
            "problemgate_upstream_connect_duration_seconds_bucket{upstream=\"legacy\",le=\"0.0005\"} 1\n") !=
        std::string::npos);
    CHECK(
        text.find(
            "problemgate_upstream_response_head_duration_seconds_count{route=\"api\",status_class=\"5xx\"} 1\n") !=
        std::string::npos);
    for (const char* name :
         {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
          "process_max_fds ", "process_start_time_seconds ", "process_virtual_memory_bytes "}) {
      CAPTURE(name);
      CHECK(text.find(std::string("\n") + name) != std::string::npos);
    }
  }
  TEST_CASE("every sample line is name{labels} value and every family has HELP and TYPE") {
    Metrics m(1);
    bump(m.worker(0).route("api").requests[0][404 - 100]);
    const std::string text = m.render(0);
    std::size_t pos = 0;
    while (pos < text.size()) {
      const auto nl = text.find('\n', pos);
      REQUIRE(nl != std::string::npos);
      const std::string line = text.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.rfind("# ", 0) == 0) {
        CHECK((line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0));
        continue;
      }
      CAPTURE(line);
      const auto sp = line.rfind(' ');
      REQUIRE(sp != std::string::npos);
      CHECK(line.find_first_not_of("0123456789.e+-", sp + 1) == std::string::npos);
    }
  }
}
