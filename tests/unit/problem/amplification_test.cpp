// Output amplification: field-error paths repeat their parent's prefix for every child, so a
// 60 KB field map (one 30 KB key, 10,000 empty messages) was rewritten into 300 MB. The field-error
// budget (8 bytes of `errors` entries per body byte, plus 4 KiB) bounds the rewritten body linearly
// by the body for every shape; the guards below assert bytes, not time.
#include <doctest/doctest.h>

#include <string>

#include "problem/field_errors.hpp"
#include "support.hpp"

namespace {

namespace pi = problemgate::problem::internal;

/// What the guards allow: the budget's 8 bytes per body byte and 4 KiB, the other members (each
/// copied from the body at most once), and the fixed members.
constexpr std::size_t kMaxBytesPerBodyByte = 10;

constexpr std::size_t kLongKey = 30000;

/// Runs `body` as a 400 and checks the rewritten body against the linear bound.
pgtest::Result run_bounded(const std::string& body,
                           std::string_view content_type = "application/json") {
  REQUIRE(body.size() <= pgtest::pp::Options{}.max_error_body);
  auto r = pgtest::run(400, content_type, body);
  MESSAGE(body.size() << " body bytes -> " << r.out.body.size() << " rewritten bytes");
  CHECK(r.out.body.size() <= kMaxBytesPerBodyByte * body.size());
  return r;
}

/// `count` copies of `item` joined by commas.
std::string repeated(std::string_view item, std::size_t count) {
  std::string s;
  s.reserve((item.size() + 1) * count);
  for (std::size_t i = 0; i < count; ++i) {
    if (i != 0) s.push_back(',');
    s += item;
  }
  return s;
}

/// Every kept entry has `path` and they are a non-empty prefix of the upstream's entries.
void check_kept_prefix(const pgtest::json& body, const std::string& path) {
  REQUIRE(body.contains("errors"));
  CHECK(!body["errors"].empty());
  for (const auto& e : body["errors"]) CHECK(e["path"] == path);
}

}  // namespace

TEST_SUITE("problem.amplification") {
  TEST_CASE("fieldmap: one 30 KB key with 10,000 empty messages (the reported body)") {
    const std::string key(kLongKey, 'k');
    const std::string body = "{\"" + key + "\":[" + repeated("\"\"", 10000) + "]}";
    CHECK(body.size() == 60006);
    auto r = run_bounded(body);
    CHECK(r.out.dialect == pgtest::pp::Dialect::fieldmap);
    check_kept_prefix(r.body, key);
    CHECK(r.body["errors"][0] == pgtest::json{{"path", key}, {"code", "invalid"}, {"message", ""}});
  }

  TEST_CASE("nested map: a long key over thousands of children") {
    const std::string key(kLongKey, 'n');
    std::string body = "{\"" + key + "\":{";
    for (int i = 0; i < 2400; ++i) {
      if (i != 0) body += ',';
      body += "\"c" + std::to_string(i) + "\":[\"\"]";
    }
    body += "}}";
    auto r = run_bounded(body);
    CHECK(r.out.dialect == pgtest::pp::Dialect::fieldmap);
    REQUIRE(!r.body["errors"].empty());
    CHECK(r.body["errors"][0]["path"] == key + ".c0");
    CHECK(r.body["errors"][1]["path"] == key + ".c1");
  }

  TEST_CASE("list of maps: a long key over thousands of list entries") {
    const std::string key(kLongKey, 'l');
    const std::string body = "{\"" + key + "\":[" + repeated(R"({"a":[""]})", 2700) + "]}";
    auto r = run_bounded(body);
    CHECK(r.out.dialect == pgtest::pp::Dialect::fieldmap);
    REQUIRE(r.body["errors"].size() >= 2);
    CHECK(r.body["errors"][0]["path"] == key + ".0.a");
    CHECK(r.body["errors"][1]["path"] == key + ".1.a");
  }

  TEST_CASE("errors map in every dialect that reads one: json, nested, flat, detail, problem") {
    const std::string key(kLongKey, 'e');
    const std::string map = "{\"" + key + "\":[" + repeated("\"\"", 9900) + "]}";
    for (const std::string& body :
         {R"({"message":"m","errors":)" + map + "}",
          R"({"error":{"code":"bad","errors":)" + map + "}}",
          R"({"error":"bad","details":)" + map + "}", R"({"detail":"d","fields":)" + map + "}",
          R"({"type":"about:blank","title":"t","status":400,"errors":)" + map + "}"}) {
      CAPTURE(body.substr(0, 40));
      check_kept_prefix(run_bounded(body).body, key);
    }
  }

  TEST_CASE("the body's code repeated on thousands of one-byte entries") {
    // Codes are at most 64 characters, but each empty message still became ~100 bytes (33x).
    const std::string code(60, 'c');
    const std::string body =
        R"({"error":{"code":")" + code + R"(","details":{"f":[)" + repeated("\"\"", 19000) + "]}}}";
    auto r = run_bounded(body);
    CHECK(r.out.dialect == pgtest::pp::Dialect::nested);
    CHECK(r.body["errors"][0]["code"] == code);
  }

  TEST_CASE("FastAPI loc: a long element in every entry, and numbers that print longer") {
    const std::string segment(200, 'f');
    const std::string entry =
        R"({"loc":["body",")" + segment + R"("],"msg":"m","type":"value_error"})";
    run_bounded(R"({"detail":[)" + repeated(entry, 250) + "]}");
    // 1e18 is written 1000000000000000000: four times the bytes in the path.
    auto r = run_bounded(R"({"detail":[{"loc":[)" + repeated("1e18", 12000) + R"(],"msg":"m"}]})");
    CHECK(r.out.dialect == pgtest::pp::Dialect::detail);
  }

  TEST_CASE("GraphQL path and JSON:API pointer: a long element in every entry") {
    const std::string segment(200, 'g');
    run_bounded(R"({"errors":[)" +
                repeated(R"({"message":"","path":[")" + segment +
                             R"(",0,"x"],"extensions":{"code":"BAD"}})",
                         200) +
                "]}");
    run_bounded(R"({"errors":[)" +
                repeated(R"({"detail":"","source":{"pointer":"/data/)" + segment + R"("}})", 200) +
                "]}");
  }

  TEST_CASE("a normal body with 100 field errors keeps all of them, in order") {
    std::string body = "{";
    for (int i = 0; i < 100; ++i) {
      if (i != 0) body += ',';
      body += "\"field" + std::to_string(i) + "\":[\"This field is required.\"]";
    }
    body += "}";
    auto r = pgtest::run(400, "application/json", body);
    REQUIRE(r.body["errors"].size() == 100);
    for (int i = 0; i < 100; ++i) {
      CHECK(r.body["errors"][i] == pgtest::json{{"path", "field" + std::to_string(i)},
                                                {"code", "invalid"},
                                                {"message", "This field is required."}});
    }
  }

  TEST_CASE("a 40 KB bulk validation body (1,000 rows of a list of maps) keeps every row") {
    const std::string row = R"({"email":["Enter a valid email address."]})";
    const std::string body = R"({"items":[)" + repeated(row, 1000) + "]}";
    auto r = pgtest::run(400, "application/json", body);
    REQUIRE(r.body["errors"].size() == 1000);
    CHECK(r.body["errors"][999]["path"] == "items.999.email");
  }

  TEST_CASE(
      "the budget keeps the first entries that fit and nothing after the first that does not") {
    // {"path":"a","code":"invalid"} is 29 bytes, each later entry 30 with its comma.
    pi::FieldErrors errors(29 + 30 + 10);
    errors.add("a", "invalid", std::nullopt);
    errors.add("b", "invalid", std::nullopt);
    CHECK_FALSE(errors.closed());
    errors.add("a long path that does not fit", "invalid", std::nullopt);
    CHECK(errors.closed());
    errors.add("", "x", std::nullopt);  // would fit, but comes after a dropped entry
    const auto kept = std::move(errors).take();
    REQUIRE(kept.size() == 2);
    CHECK(kept[0].path == "a");
    CHECK(kept[1].path == "b");
  }

  TEST_CASE("the budget counts entries as written: escapes included, exactly") {
    // {"path":"\"","code":"c","message":"\u0001"}: 43 bytes.
    pi::FieldErrors exact(43);
    exact.add("\"", "c", std::string_view("\x01", 1));
    CHECK_FALSE(exact.closed());
    pi::FieldErrors short_by_one(42);
    short_by_one.add("\"", "c", std::string_view("\x01", 1));
    CHECK(short_by_one.closed());
    CHECK(std::move(short_by_one).take().empty());
  }

  TEST_CASE("the budget grows linearly with the body") {
    CHECK(pi::field_error_budget(0) == pi::kFieldErrorBudgetFloor);
    CHECK(pi::field_error_budget(60006) == 8 * 60006 + 4096);
  }
}
