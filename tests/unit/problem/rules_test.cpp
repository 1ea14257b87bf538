#include "problem/rules.hpp"

#include <doctest/doctest.h>

#include "support.hpp"

namespace pp = problemgate::problem;
namespace in = problemgate::problem::internal;

namespace {
pp::Rule rule() { return pp::Rule{}; }

pp::DetailPattern pattern(std::string_view text) {
  std::string error;
  auto compiled = pp::DetailPattern::compile(text, error);
  REQUIRE_MESSAGE(compiled, error);
  return *compiled;
}

/// A 400 whose JSON body carries `detail` as its message, big enough for a 60 KiB detail.
pgtest::Result run_with_detail(const pp::RouteOptions& route, const std::string& detail) {
  pp::Options opts;
  opts.max_error_body = 128 * 1024;
  const std::string body = R"({"message":")" + detail + R"("})";
  pgtest::Call c;
  c.status = 400;
  c.body = body;  // a view: `body` outlives the call
  return pgtest::run(c, opts, route);
}
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
    by_detail.when.detail_matches = pattern("replica lag [0-9]+s");
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

  TEST_CASE("detail_matches searches the whole detail") {
    // Before RE2 only the first 1 KiB was searched (std::regex recursed per character).
    auto r1 = rule();
    r1.when.detail_matches = pattern("(a|b)*c");
    r1.set.subcode = "matched";
    pp::RouteOptions route;
    route.rules = {r1};
    CHECK(run_with_detail(route, std::string(60 * 1024, 'a') + "c").body["subcode"] == "matched");
    CHECK_FALSE(run_with_detail(route, std::string(60 * 1024, 'a')).body.contains("subcode"));
  }

  TEST_CASE("a catastrophic-backtracking pattern on a hostile 60 KiB detail finishes") {
    // (a+)+$ over n 'a's and a 'b' takes ~2^n steps in a backtracking engine (std::regex took over
    // a second at n = 24); RE2 is linear, so this returns at once. No timing assertion: a
    // backtracking engine would simply not finish.
    auto r1 = rule();
    r1.when.detail_matches = pattern("(a+)+$");
    r1.set.subcode = "matched";
    pp::RouteOptions route;
    route.rules = {r1};
    CHECK_FALSE(run_with_detail(route, std::string(60 * 1024, 'a') + "b").body.contains("subcode"));
    CHECK(run_with_detail(route, std::string(60 * 1024, 'a')).body["subcode"] == "matched");
  }

  TEST_CASE("DetailPattern: search, inline flags, case-sensitive by default") {
    CHECK(pattern("lag [0-9]+s").search("replica lag 30s on db-2"));  // a search, not a full match
    CHECK_FALSE(pattern("^lag").search("replica lag 30s"));
    CHECK(pattern("Timeout").search("Gateway Timeout"));
    CHECK_FALSE(pattern("Timeout").search("gateway timeout"));
    CHECK(pattern("(?i)timeout").search("Gateway TIMEOUT"));
    CHECK(pattern("a(?i)b").search("aB"));  // an inline flag applies from where it stands
    CHECK_FALSE(pattern("a(?i)b").search("AB"));
    CHECK(pattern("caf.$").search("café"));  // UTF-8: '.' is one code point
    CHECK(pattern("(?i)ÉCHEC").search("échec"));
    CHECK(pattern("x").search(
        std::string("\xff\xfe x", 4)));  // invalid UTF-8 is searched, not refused
    CHECK(pattern("(?i)time ?out").pattern() == "(?i)time ?out");
  }

  TEST_CASE("DetailPattern: what RE2 refuses, with a reason") {
    auto error_of = [](std::string_view text) {
      std::string error;
      CHECK_FALSE(pp::DetailPattern::compile(text, error));
      return error;
    };
    CHECK(error_of("(") == "missing ): (");
    CHECK(error_of("(a)\\1").find("backreferences are not supported") != std::string::npos);
    CHECK(error_of("a(?=b)").find("lookahead and lookbehind are not supported") !=
          std::string::npos);
    CHECK(error_of("(?<!a)b").find("lookahead and lookbehind are not supported") !=
          std::string::npos);
    CHECK(error_of("\\pL{1000}").find("pattern too large") != std::string::npos);
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
