#include "problemgate/config/config.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "config_test_support.hpp"
#include "problemgate/config/dump.hpp"

using namespace problemgate::config;
using namespace problemgate::config::test;

namespace {
bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

TEST_SUITE("config.telemetry") {
  TEST_CASE("defaults: no label allow-list, nothing redacted, 2 KiB of detail") {
    const Config c = load_config_text(kMinimal, "t.yaml");
    CHECK_FALSE(c.telemetry.subcode_labels.has_value());
    CHECK(c.telemetry.redact_query.empty());
    CHECK(c.telemetry.max_logged_detail == 2048);
  }

  TEST_CASE("every key is read and shown by the /config dump") {
    const Config c = load_config_text(with(R"(
telemetry:
  subcode_labels: [user_not_found, quota_exceeded]
  redact_query: [token, api_key]
  max_logged_detail: 4KiB
)"),
                                      "t.yaml");
    REQUIRE(c.telemetry.subcode_labels.has_value());
    CHECK(*c.telemetry.subcode_labels ==
          std::vector<std::string>{"user_not_found", "quota_exceeded"});
    CHECK(c.telemetry.redact_query == std::vector<std::string>{"token", "api_key"});
    CHECK(c.telemetry.max_logged_detail == 4096);
    const auto dump = nlohmann::json::parse(dump_json(c));
    CHECK(dump["telemetry"]["subcode_labels"] ==
          nlohmann::json({"user_not_found", "quota_exceeded"}));
    CHECK(dump["telemetry"]["redact_query"] == nlohmann::json({"token", "api_key"}));
    CHECK(dump["telemetry"]["max_logged_detail"] == 4096);
    const auto defaults = nlohmann::json::parse(dump_json(load_config_text(kMinimal, "t.yaml")));
    CHECK(defaults["telemetry"]["subcode_labels"].is_null());
  }

  TEST_CASE("every error names its path and reason") {
    CHECK(contains(error_of(with("telemetry: { subcode_labels: [User-Not-Found] }\n")),
                   "/telemetry/subcode_labels/0: \"User-Not-Found\" is not lowercase_snake_case"));
    CHECK(contains(error_of(with("telemetry: { subcode_labels: user_not_found }\n")),
                   "/telemetry/subcode_labels: expected a list of strings"));
    CHECK(contains(error_of(with("telemetry: { subcode_labels: [a, a] }\n")),
                   "/telemetry/subcode_labels/1: \"a\" is listed twice"));
    CHECK(contains(error_of(with("telemetry: { redact_query: [\"a=b\"] }\n")),
                   "/telemetry/redact_query/0: \"a=b\" is not a query parameter name"));
    CHECK(contains(error_of(with("telemetry: { redact_query: [\"\"] }\n")),
                   "/telemetry/redact_query/0: expected a non-empty string"));
    CHECK(contains(error_of(with("telemetry: { max_logged_detail: 1MiB }\n")),
                   "/telemetry/max_logged_detail: must be at most 65536 bytes"));
    CHECK(contains(error_of(with("telemetry: { max_logged_detail: 2KB }\n")),
                   "/telemetry/max_logged_detail: invalid size"));
    CHECK(contains(error_of(with("telemetry: { redact: [token] }\n")),
                   "/telemetry/redact: unknown key \"redact\""));
  }
}
