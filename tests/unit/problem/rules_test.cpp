// GCC 12 warns about std::function inside std::regex's compiler when built with -fsanitize=address
// (a known false positive in libstdc++'s <regex>). The pragma precedes the first include so that it
// covers <regex>; this TU is the one that constructs regexes.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "problem/rules.hpp"

#include <doctest/doctest.h>

#include "support.hpp"

namespace pp = problemgate::problem;
namespace in = problemgate::problem::internal;

namespace {
pp::Rule rule() { return pp::Rule{}; }
}  // namespace

TEST_SUITE("problem.rules") {
  TEST_CASE("glob_match") {
    CHECK(in::glob_match("*", ""));
    CHECK(in::glob_match("INVALID_*", "INVALID_NAME"));
    CHECK_FALSE(in::glob_match("INVALID_*", "invalid_name"));
    CHECK(in::glob_match("a?c", "abc"));
    CHECK_FALSE(in::glob_match("a?c", "ac"));
    CHECK(in::glob_match("*_not_found", "skill_not_found"));
    CHECK(in::glob_match("*a*b*c*", "xxaxxbxxcxx"));
    CHECK_FALSE(in::glob_match("*a*b*c*d", std::string(5000, 'a') + "bc"));
  }

  TEST_CASE("first matching rule wins; set overrides") {
    pp::RouteOptions route;
    auto r1 = rule();
    r1.when.status_class = 5;
    r1.set.detail = "never";
    auto r2 = rule();
    r2.when.upstream_code = "quota_*";  // matches the normalized form of QUOTA_EXCEEDED
    r2.set.code = "rate_limited";
    r2.set.subcode = "quota";
    auto r3 = rule();
    r3.set.title = "not reached";
    route.rules = {r1, r2, r3};
    pgtest::Call c;
    c.status = 403;
    c.body = R"({"error":{"code":"QUOTA_EXCEEDED","message":"quota reached"}})";
    auto r = pgtest::run(c, {}, route);
    CHECK(r.body["code"] == "rate_limited");
    CHECK(r.body["subcode"] == "quota");
    CHECK(r.body["title"] == "Forbidden");  // about:blank keeps the status reason phrase
    CHECK(r.out.code == "rate_limited");
  }

  TEST_CASE("when: status, dialect, raw code, detail regex") {
    auto by_status = rule();
    by_status.when.status = 404;
    by_status.set.subcode = "gone_missing";
    auto by_dialect = rule();
    by_dialect.when.dialect = pp::Dialect::html;
    by_dialect.set.detail = "An HTML page was returned.";
    auto by_raw = rule();
    by_raw.when.upstream_code = "CHANNEL_*";
    by_raw.set.type = "https://errors.example.com/channel";
    auto by_detail = rule();
    by_detail.when.detail_matches = std::make_shared<const std::regex>("replica lag [0-9]+s");
    by_detail.set.code = "upstream_unavailable";
    by_detail.set.detail = "Try again shortly.";

    pp::RouteOptions route;
    route.rules = {by_status, by_dialect, by_raw, by_detail};
    pgtest::Call c;
    c.status = 404;
    c.body = "{}";
    CHECK(pgtest::run(c, {}, route).body["subcode"] == "gone_missing");
    c.status = 400;
    c.content_type = "text/html";
    c.body = "<html><body><p>Bad thing happened here</p></body></html>";
    CHECK(pgtest::run(c, {}, route).body["detail"] == "An HTML page was returned.");
    c.content_type = "application/json";
    c.body = R"({"error":{"code":"CHANNEL_PAUSED","message":"paused"}})";
    CHECK(pgtest::run(c, {}, route).body["type"] == "https://errors.example.com/channel");
    c.status = 500;
    c.body = R"({"message":"replica lag 30s on db-2"})";
    auto r = pgtest::run(c, {}, route);
    CHECK(r.body["code"] == "upstream_unavailable");
    CHECK(r.body["detail"] == "Try again shortly.");  // operator text, shown on 5xx
    CHECK(r.out.hidden_detail == "replica lag 30s on db-2");
  }

  TEST_CASE("detail_matches on a 60 KiB detail does not exhaust the stack") {
    auto r1 = rule();
    r1.when.detail_matches = std::make_shared<const std::regex>("(a|b)*c");
    r1.set.subcode = "matched";
    pp::RouteOptions route;
    route.rules = {r1};
    pp::Options opts;
    opts.max_error_body = 128 * 1024;
    const std::string body = R"({"message":")" + std::string(60 * 1024, 'a') + R"(c"})";
    pgtest::Call c;
    c.status = 400;
    c.body = body;
    CHECK_FALSE(pgtest::run(c, opts, route).body.contains("subcode"));  // the 'c' is past 1 KiB
  }

  TEST_CASE("upstream_code rules never match a body without a code") {
    auto any_code = rule();
    any_code.when.upstream_code = "*";
    any_code.set.subcode = "matched";
    pp::RouteOptions route;
    route.rules = {any_code};
    pgtest::Call c;
    c.status = 400;
    c.body = R"({"message":"no code here"})";
    CHECK_FALSE(pgtest::run(c, {}, route).body.contains("subcode"));
  }

  TEST_CASE("rules on an upstream problem keep its type") {
    auto r1 = rule();
    r1.set.code = "custom_code";
    pp::RouteOptions route;
    route.rules = {r1};
    pp::Options opts;
    opts.type_base = "https://errors.example.com/";
    pgtest::Call c;
    c.status = 400;
    c.content_type = "application/problem+json";
    c.body = R"({"type":"https://up.example.com/p/x","title":"X","status":400})";
    auto r = pgtest::run(c, opts, route);
    CHECK(r.body["type"] == "https://up.example.com/p/x");
    CHECK(r.body["title"] == "X");
    CHECK(r.body["code"] == "custom_code");
  }
}
