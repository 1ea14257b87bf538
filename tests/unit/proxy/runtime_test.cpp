#include "proxy/runtime.hpp"

#include <doctest/doctest.h>

#include "problemgate/config/load.hpp"
#include "problemgate/core/clock.hpp"

using problemgate::proxy::Runtime;

namespace {
Runtime runtime_of(std::string_view yaml, const problemgate::core::Clock& clock) {
  return Runtime(problemgate::config::load_config_text(yaml, "t.yaml"), clock,
                 problemgate::ratelimit::HashKey{1, 2});
}
constexpr std::string_view kBase = R"(
upstreams:
  legacy: { url: http://127.0.0.1:9000 }
problem:
  legacy_codes:
    ACME_WIDGET_JAMMED: { subcode: widget_jammed }
routes:
  - match: { prefix: / }
    upstream: legacy
    rules:
      - when: { status: 409 }
        set: { subcode: edit_conflict }
)";
}  // namespace

TEST_SUITE("proxy.runtime") {
  TEST_CASE(
      "subcode labels default to what the legacy table and rules can produce; the rest is other") {
    problemgate::core::FakeClock clock;
    const Runtime rt = runtime_of(kBase, clock);
    CHECK(rt.subcode_label("widget_jammed") == "widget_jammed");      // config legacy_codes
    CHECK(rt.subcode_label("skill_not_found") == "skill_not_found");  // the default table
    CHECK(rt.subcode_label("edit_conflict") == "edit_conflict");      // a route rule
    CHECK(rt.subcode_label("") == "");                                // no subcode: no label value
    // 100 upstream codes with ids inside them make one series, not 100.
    for (int i = 0; i < 100; ++i)
      CHECK(rt.subcode_label("order_" + std::to_string(i) + "_not_found") == "other");
  }

  TEST_CASE("telemetry.subcode_labels replaces the default allow-list") {
    problemgate::core::FakeClock clock;
    const Runtime rt =
        runtime_of(std::string(kBase) + "telemetry: { subcode_labels: [user_not_found] }\n", clock);
    CHECK(rt.subcode_label("user_not_found") == "user_not_found");
    CHECK(rt.subcode_label("widget_jammed") == "other");
    CHECK(rt.subcode_label("skill_not_found") == "other");
  }
}
