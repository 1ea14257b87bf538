#include "problem/legacy_codes.hpp"

#include <doctest/doctest.h>

#include "support.hpp"

namespace pp = problemgate::problem;
namespace in = problemgate::problem::internal;

TEST_SUITE("problem.legacy_codes") {
  TEST_CASE("default table: lowercase subcode, parent code untouched") {
    pp::Options opts;
    auto q = in::find_legacy_code("QUOTA_EXCEEDED", opts);
    REQUIRE(q);
    CHECK(q->subcode == "quota_exceeded");
    CHECK(q->code.empty());
    CHECK(in::find_legacy_code("INTERNAL", opts)->subcode == "internal_error");
    CHECK(in::find_legacy_code("INVALID_SKILL_NAME", opts)->subcode == "invalid_skill_name");
    CHECK(in::find_legacy_code("REDEMPTION_CODE_EXPIRED", opts)->subcode ==
          "redemption_code_expired");
    CHECK_FALSE(in::find_legacy_code("quota_exceeded", opts));  // case-sensitive, as written
    CHECK_FALSE(in::find_legacy_code("SOMETHING_ELSE", opts));
  }

  TEST_CASE("config entries override, exact before glob, longest glob wins") {
    pp::Options opts;
    opts.legacy_codes["QUOTA_EXCEEDED"] = {"rate_limited", "quota_exceeded"};
    opts.legacy_codes["OLD_*"] = {"", "old_thing"};
    opts.legacy_codes["OLD_SPECIAL_*"] = {"resource_gone", "old_special"};
    opts.legacy_codes["INVALID_*"] = {"", ""};
    auto q = in::find_legacy_code("QUOTA_EXCEEDED", opts);
    CHECK(q->code == "rate_limited");
    CHECK(q->subcode == "quota_exceeded");
    CHECK(in::find_legacy_code("OLD_X", opts)->subcode == "old_thing");
    CHECK(in::find_legacy_code("OLD_SPECIAL_Y", opts)->code == "resource_gone");
    CHECK(in::find_legacy_code("INVALID_NAME", opts)->subcode == "invalid_name");
  }

  TEST_CASE("through normalize: config moves the parent code, default does not") {
    const std::string_view body =
        R"({"error":{"code":"QUOTA_EXCEEDED","message":"quota reached"}})";
    auto plain = pgtest::run(403, "application/json", body);
    CHECK(plain.body["code"] == "permission_denied");
    CHECK(plain.body["subcode"] == "quota_exceeded");
    pp::Options opts;
    opts.type_base = "https://errors.example.com/";
    opts.legacy_codes["QUOTA_EXCEEDED"] = {"rate_limited", "quota_exceeded"};
    pgtest::Call c;
    c.status = 403;
    c.body = body;
    auto mapped = pgtest::run(c, opts);
    CHECK(mapped.body["code"] == "rate_limited");
    CHECK(mapped.body["subcode"] == "quota_exceeded");
    CHECK(mapped.body["type"] == "https://errors.example.com/rate_limited");
    CHECK(mapped.body["title"] == "Too many requests");
  }
}
