#include "problemgate/obs/access_log.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

using problemgate::obs::AccessLog;
using problemgate::obs::AccessRecord;

TEST_SUITE("obs.access_log") {
  TEST_CASE("one parseable JSON object with the request's facts") {
    AccessRecord r;
    r.time_ms = 1'706'900'060'123;
    r.request_id = "req_1";
    r.method = "GET";
    r.path = "/a";
    r.status = 404;
    r.route = "legacy";
    r.duration_ms = 1.5;
    r.bytes_out = 42;
    r.dialect = "flat";
    r.code = "resource_not_found";
    std::string line;
    AccessLog::format(r, line);
    auto j = nlohmann::json::parse(line);
    CHECK(j["time"] == "2024-02-02T18:54:20.123Z");
    CHECK(j["requestId"] == "req_1");
    CHECK(j["status"] == 404);
    CHECK(j["duration_ms"] == doctest::Approx(1.5));
    CHECK(j["bytes_out"] == 42);
    CHECK(j["dialect"] == "flat");
    CHECK_FALSE(j.contains("subcode"));
  }
  TEST_CASE("hostile client values never break the line and are capped") {
    const std::string huge(64 * 1024, 'x');
    std::string evil = "a\nb\r\"c\\\xE2\x80\xA8\xff";
    AccessRecord r;
    r.path = evil;
    r.user_agent = huge;
    r.request_id = evil;
    std::string line;
    AccessLog::format(r, line);
    CHECK(line.find('\n') == std::string::npos);
    auto j = nlohmann::json::parse(line);
    CHECK(j["user_agent"].get<std::string>().size() <= AccessLog::kMaxFieldBytes);
    CHECK(line.size() < 8 * 1024);
  }
}
