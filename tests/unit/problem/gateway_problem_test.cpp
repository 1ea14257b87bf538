#include "problemgate/core/gateway_error.hpp"
#include "problemgate/problem/problem.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>

using problemgate::core::gateway_error_info;
using problemgate::core::GatewayError;
namespace problem = problemgate::problem;

namespace {

struct Row {
  GatewayError error;
  const char* name;
  int status;
  const char* code;  // the parent code the default catalog gives the status
  const char* subcode;
  const char* proxy_status;
};

// The contract's gateway-error table, one row per failure the gateway answers itself.
constexpr Row kTable[] = {
    {GatewayError::route_not_found, "route_not_found", 404, "resource_not_found", "route_not_found",
     "destination_not_found"},
    {GatewayError::malformed_request, "malformed_request", 400, "validation_error",
     "malformed_request", "http_request_error"},
    {GatewayError::invalid_path, "invalid_path", 400, "validation_error", "malformed_request",
     "http_request_error"},
    {GatewayError::duplicate_limit_key, "duplicate_limit_key", 400, "validation_error",
     "malformed_request", "http_request_error"},
    {GatewayError::upgrade_refused, "upgrade_refused", 400, "validation_error",
     "upgrade_not_allowed", "http_request_denied"},
    {GatewayError::uri_too_long, "uri_too_long", 414, "client_error", "uri_too_long",
     "http_request_error"},
    {GatewayError::headers_too_large, "headers_too_large", 431, "client_error", "headers_too_large",
     "http_request_error"},
    {GatewayError::payload_too_large, "payload_too_large", 413, "payload_too_large", "",
     "http_request_error"},
    {GatewayError::request_timeout, "request_timeout", 408, "request_timeout", "",
     "http_request_error"},
    {GatewayError::not_implemented, "not_implemented", 501, "internal_error",
     "unsupported_transfer_coding", "http_request_error"},
    {GatewayError::rate_limited, "rate_limited", 429, "rate_limited", "rate_limit_exceeded",
     "http_request_denied"},
    {GatewayError::upstream_down, "upstream_down", 502, "upstream_unavailable", "upstream_down",
     "connection_refused"},
    {GatewayError::upstream_timeout, "upstream_timeout", 504, "upstream_unavailable",
     "upstream_timeout", "http_response_timeout"},
    {GatewayError::upstream_tls_error, "upstream_tls_error", 502, "upstream_unavailable",
     "upstream_tls_error", "tls_protocol_error"},
    {GatewayError::gateway_unavailable, "gateway_unavailable", 503, "upstream_unavailable",
     "gateway_unavailable", "proxy_internal_error"},
    {GatewayError::rate_limit_unavailable, "rate_limit_unavailable", 503, "upstream_unavailable",
     "gateway_unavailable", "proxy_internal_error"},
};

}  // namespace

TEST_SUITE("problem.gateway_errors") {
  TEST_CASE("every gateway error has its row, and its problem says the same") {
    for (const Row& row : kTable) {
      CAPTURE(row.name);
      const auto info = gateway_error_info(row.error);
      CHECK(info.name == row.name);
      CHECK(info.status == row.status);
      CHECK(info.subcode == row.subcode);
      CHECK(info.proxy_status == row.proxy_status);
      CHECK_FALSE(info.detail.empty());

      const problem::Problem p =
          problem::make_gateway_problem(row.error, "/a/b", "req_1", problem::Options{});
      std::string body;
      problem::write_problem(p, body);
      const auto j = nlohmann::json::parse(body);
      CHECK(j["status"] == row.status);
      CHECK(j["code"] == row.code);
      CHECK(j["title"] == std::string(problem::reason_phrase(row.status)));
      CHECK(j["type"] == "about:blank");
      CHECK(j["instance"] == "/a/b");
      CHECK(j["requestId"] == "req_1");
      CHECK(j["detail"] == std::string(info.detail));
      if (*row.subcode)
        CHECK(j["subcode"] == row.subcode);
      else
        CHECK_FALSE(j.contains("subcode"));
    }
  }
  TEST_CASE("traceId is written right after requestId, and only when there is one") {
    const problem::Problem p =
        problem::make_gateway_problem(GatewayError::rate_limited, "/a", "req_1", problem::Options{},
                                      "4bf92f3577b34da6a3ce929d0e0e4736");
    std::string body;
    problem::write_problem(p, body);
    const auto rid = body.find("\"requestId\":\"req_1\"");
    REQUIRE(rid != std::string::npos);
    CHECK(body.find(",\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\"") ==
          rid + std::string_view("\"requestId\":\"req_1\"").size());
    std::string without;
    problem::write_problem(problem::make_gateway_problem(GatewayError::rate_limited, "/a", "req_1",
                                                         problem::Options{}),
                           without);
    CHECK(without.find("traceId") == std::string::npos);
  }
}
