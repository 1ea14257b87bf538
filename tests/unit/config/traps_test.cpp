// Issue 23, "config without traps": values that used to pass check-config and then did something
// other than what the operator meant.
#include "problemgate/config/load.hpp"

#include <doctest/doctest.h>

#include "config_test_support.hpp"

using namespace problemgate::config;
using namespace problemgate::config::test;

namespace {

Endpoint ep(std::string host, std::uint16_t port) {
  return Endpoint{std::move(host), port, std::nullopt};
}

}  // namespace

TEST_SUITE("config.traps") {
  TEST_CASE("a duration without a unit is an error with a suggestion") {
    CHECK(
        error_of(with("rate_limit: { limit: 100, window: 60 }\n")) ==
        "t.yaml:6: /rate_limit/window: invalid duration 60: a duration needs a unit (ms, s, m, h): did you mean \"60s\"?");
    CHECK(
        error_of(with("limits:\n  idle_timeout: 1500\n")) ==
        "t.yaml:7: /limits/idle_timeout: invalid duration 1500: a duration needs a unit (ms, s, m, h): did you mean \"1500ms\"?");
    // From 1000 on, the suggestion keeps the old (millisecond) reading, in the largest exact unit.
    CHECK(error_of(with("limits: { header_timeout: 30000 }\n")).ends_with("did you mean \"30s\"?"));
    CHECK(error_of(with("limits: { drain_timeout: 120000 }\n")).ends_with("did you mean \"2m\"?"));
    CHECK(error_of(with("drain: { accept_for: 7200000 }\n")).ends_with("did you mean \"2h\"?"));
    // Quoted, it is the same mistake.
    CHECK(
        error_of(with("limits: { write_timeout: \"45\" }\n")) ==
        "t.yaml:6: /limits/write_timeout: invalid duration \"45\": a duration needs a unit (ms, s, m, h): did you mean \"45s\"?");
    CHECK(
        error_of("upstreams: { a: { url: http://x, timeout: 5 } }\nroutes: [{}]\n") ==
        "t.yaml:1: /upstreams/a/timeout: invalid duration 5: a duration needs a unit (ms, s, m, h): did you mean \"5s\"?");
    // Other malformed durations keep the general message.
    CHECK(error_of(with("limits: { write_timeout: -5 }\n")) ==
          "t.yaml:6: /limits/write_timeout: invalid duration -5: expected e.g. 250ms, 10s, 5m, 1h");

    SUBCASE("0 is 0 in every unit, so it needs none") {
      const Config c = load_config_text(
          "upstreams: { a: { url: http://x, reuse_check_after: 0 } }\nroutes: [{}]\n"
          "limits: { drain_timeout: 0 }\ndrain: { accept_for: 0 }\n",
          "t");
      CHECK(c.limits.drain_timeout == Duration{0});
      CHECK(c.drain.accept_for == Duration{0});
      CHECK(c.upstreams.at(0).reuse_check_after == Duration{0});
      // Where 0 is not allowed, it is the usual range error, not a unit one.
      CHECK(error_of(with("limits: { idle_timeout: 0 }\n")) ==
            "t.yaml:6: /limits/idle_timeout: must be greater than 0");
    }
    SUBCASE("JSON too") {
      CHECK(
          error_of(R"({"upstreams": {"a": "http://x"}, "routes": [{}],
 "limits": {"header_timeout": 10}})",
                   {}, "t.json") ==
          "t.json:2: /limits/header_timeout: invalid duration 10: a duration needs a unit (ms, s, m, h): did you mean \"10s\"?");
    }
  }

  TEST_CASE("sizes: a plain number is bytes (documented, unambiguous)") {
    const Config c = load_config_text(
        with("limits: { max_header_bytes: 16384, max_body_bytes: \"1048576\" }\n"), "t");
    CHECK(c.limits.max_header_bytes == 16384);
    CHECK(c.limits.max_body_bytes == 1024 * 1024);
    CHECK(
        error_of(with("limits: { max_body_bytes: 10MB }\n")) ==
        "t.yaml:6: /limits/max_body_bytes: invalid size \"10MB\": expected bytes or e.g. 64KiB, 1MiB");
  }

  TEST_CASE("status classes are case-insensitive: 4xx, 4XX and 4xX are the same") {
    auto class_of = [](std::string_view status) {
      const Config c =
          load_config_text("upstreams: { a: http://x }\nroutes:\n  - rules: [{ when: { status: " +
                               std::string(status) + " }, set: { code: a } }]\n",
                           "t");
      REQUIRE(c.routes.at(0).problem.rules.size() == 1);
      const auto& when = c.routes[0].problem.rules[0].when;
      CHECK_FALSE(when.status);
      return when.status_class.value_or(0);
    };
    CHECK(class_of("4xx") == 4);
    CHECK(class_of("4XX") == 4);
    CHECK(class_of("5Xx") == 5);
    CHECK(class_of("\"5XX\"") == 5);
    for (const char* bad : {"3xx", "4x", "4xxx", "45x", "x4x", "4XY"}) {
      CAPTURE(bad);
      CHECK(
          error_of("upstreams: { a: http://x }\nroutes:\n  - rules: [{ when: { status: " +
                   std::string(bad) + " }, set: { code: a } }]\n") ==
          "t.yaml:3: /routes/0/rules/0/when/status: expected a status from 400 to 599, 4xx or 5xx, got \"" +
              std::string(bad) + "\"");
    }
  }

  TEST_CASE("a duplicate key is reported at its own line, naming the first") {
    CHECK(error_of(with("threads: 1\nthreads: 2\n")) ==
          "t.yaml:7: /threads: duplicate key \"threads\" (first at line 6)");
    // Nested and in flow style: the pointer is the key's, the line the duplicate's.
    CHECK(error_of(R"(upstreams:
  legacy: http://127.0.0.1:9000
routes:
  - match: { prefix: / }
    rate_limit:
      limit: 5
      window: 10s
      limit: 50
)") == "t.yaml:8: /routes/0/rate_limit/limit: duplicate key \"limit\" (first at line 6)");
    CHECK(error_of(with("limits: { idle_timeout: 5s, max_connections: 9, idle_timeout: 6s }\n")) ==
          "t.yaml:6: /limits/idle_timeout: duplicate key \"idle_timeout\" (first at line 6)");
    // Every duplicate is reported, with the other problems, in line order.
    auto errors = errors_of(with("threads: 1\nlisten: nowhere\nthreads: 2\nthreads: 3\n"));
    REQUIRE(errors.size() == 3);
    CHECK(errors[0] == "t.yaml:7: /listen: \"nowhere\": missing port: expected HOST:PORT");
    CHECK(errors[1] == "t.yaml:8: /threads: duplicate key \"threads\" (first at line 6)");
    CHECK(errors[2] == "t.yaml:9: /threads: duplicate key \"threads\" (first at line 6)");

    SUBCASE("JSON") {
      CHECK(
          error_of(
              "{\"upstreams\": {\"a\": \"http://x\"},\n \"routes\": [{}],\n \"threads\": 1,\n \"threads\": 2}",
              {}, "t.json") == "t.json:4: /threads: duplicate key \"threads\" (first at line 3)");
      // Tabs in indentation (which the YAML reader refuses) keep their line numbers too.
      CHECK(
          error_of(
              "{\n\t\"upstreams\": {\"a\": \"http://x\"},\n\t\"routes\": [{\"name\": \"a\",\n\t\t\"name\": \"b\"}]\n}",
              {},
              "t.json") == "t.json:4: /routes/0/name: duplicate key \"name\" (first at line 3)");
      // Valid JSON the YAML reader refuses (an escaped surrogate pair): still reported, by
      // pointer (that parser knows no lines).
      auto json_errors = errors_of(R"({"upstreams": {"a": "http://x"}, "threads": 1, "threads": 2,
 "routes": [{"name": "\ud83d\ude00"}, {"match": {"prefix": "/x"}, "name": "a", "name": "b"}]})",
                                   {}, "t.json");
      REQUIRE(json_errors.size() == 2);
      CHECK(json_errors[0] == "t.json: /threads: duplicate key \"threads\"");
      CHECK(json_errors[1] == "t.json: /routes/1/name: duplicate key \"name\"");
    }
  }

  TEST_CASE("what cannot change on a reload is named, and what runs decides") {
    Config running;
    running.source = "t.yaml";
    running.listen = {ep("127.0.0.1", 8080)};
    running.threads = 2;
    running.admin.listen = ep("127.0.0.1", 9901);
    Config next = running;
    CHECK(restart_only_changes(running, next).empty());

    SUBCASE("listen") {
      next.listen = {ep("127.0.0.1", 8081)};
      const auto p = restart_only_changes(running, next);
      REQUIRE(p.size() == 1);
      CHECK(
          p[0] ==
          "t.yaml: /listen: cannot change on a reload (runs 127.0.0.1:8080, the file says 127.0.0.1:8081): restart to apply it");
      next.listen = {ep("127.0.0.1", 8080), ep("::1", 8080)};
      CHECK(restart_only_changes(running, next).size() == 1);
    }
    SUBCASE("order does not matter; port 0 (any free port) matches the port bound") {
      running.listen = {ep("127.0.0.1", 41000), ep("::1", 41001)};
      next.listen = {ep("::1", 0), ep("127.0.0.1", 41000)};
      CHECK(restart_only_changes(running, next).empty());
      next.listen = {ep("::1", 0), ep("127.0.0.2", 0)};
      CHECK(restart_only_changes(running, next).size() == 1);
    }
    SUBCASE("threads, as resolved") {
      next.threads = 4;
      const auto p = restart_only_changes(running, next);
      REQUIRE(p.size() == 1);
      CHECK(
          p[0] ==
          "t.yaml: /threads: cannot change on a reload (runs 2, the file says 4): restart to apply it");
      next.threads = 0;  // auto: one per core, as many as run
      running.threads = next.worker_threads();
      CHECK(restart_only_changes(running, next).empty());
    }
    SUBCASE("admin.listen, every key at once") {
      next.admin.listen.reset();
      next.threads = 3;
      next.listen = {ep("0.0.0.0", 8080)};
      const auto p = restart_only_changes(running, next);
      REQUIRE(p.size() == 3);
      CHECK(
          p[0] ==
          "t.yaml: /listen: cannot change on a reload (runs 127.0.0.1:8080, the file says 0.0.0.0:8080): restart to apply it");
      CHECK(
          p[1] ==
          "t.yaml: /threads: cannot change on a reload (runs 2, the file says 3): restart to apply it");
      CHECK(
          p[2] ==
          "t.yaml: /admin/listen: cannot change on a reload (runs 127.0.0.1:9901, the file says off): restart to apply it");
    }
    SUBCASE("everything else may change") {
      next.drain.accept_for = Duration{5000};
      next.limits.idle_timeout = Duration{1000};
      next.access_log = false;
      next.routes.clear();
      CHECK(restart_only_changes(running, next).empty());
    }
  }
}
