#include "problemgate/config/load.hpp"

#include <doctest/doctest.h>

#include "config_test_support.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "config/internal.hpp"

using namespace problemgate::config;
using namespace problemgate::config::test;
namespace problem = problemgate::problem;

namespace {

std::string route_with(std::string_view route_keys) {
  return "upstreams:\n  legacy: http://127.0.0.1:9000\nroutes:\n  - match: { prefix: / }\n" +
         std::string(route_keys);
}

}  // namespace

TEST_SUITE("config.load") {
  TEST_CASE("an empty file plus --upstream is a valid sidecar, with every default") {
    Overrides o;
    o.upstream = "http://127.0.0.1:9000";
    const Config c = load_config_text("", "empty.yaml", o);
    REQUIRE(c.listen.size() == 1);
    CHECK(c.listen[0].host == "0.0.0.0");
    CHECK(c.listen[0].port == 8080);
    CHECK(c.threads == 0);
    REQUIRE(c.admin.listen);
    CHECK(c.admin.listen->to_string() == "127.0.0.1:9901");
    CHECK(c.limits.max_request_line == 8 * 1024);
    CHECK(c.limits.max_header_bytes == 32 * 1024);
    CHECK(c.limits.max_header_fields == 100);
    CHECK(c.limits.max_body_bytes == 0);
    CHECK(c.limits.request_buffer_bytes == 16 * 1024);
    CHECK(c.limits.access_log_buffer_bytes == 1024 * 1024);
    CHECK(c.limits.header_timeout == Duration{10'000});
    CHECK(c.limits.body_idle_timeout == Duration{30'000});
    CHECK(c.limits.idle_timeout == Duration{60'000});
    CHECK(c.limits.write_timeout == Duration{30'000});
    CHECK(c.limits.max_requests_per_connection == 1000);
    CHECK(c.limits.max_connections == 4096);
    CHECK(c.limits.drain_timeout == Duration{30'000});
    CHECK(c.limits.tunnel_idle_timeout == Duration{300'000});
    CHECK(c.drain.accept_for == Duration{0});
    CHECK(c.access_log);
    CHECK(c.request_id.header == "X-Request-Id");
    CHECK(c.request_id.trust_incoming);
    CHECK(c.trusted_proxies.empty());
    CHECK_FALSE(c.problem.type_base);
    CHECK_FALSE(c.problem.expose_5xx_detail);
    CHECK(c.problem.max_error_body == 64 * 1024);
    CHECK(c.problem.catalog.empty());
    CHECK(c.problem.legacy_codes.empty());
    CHECK(c.rate_limit_headers.format == RateLimitHeaders::Format::x_ratelimit);
    CHECK(c.rate_limit_headers.reset == RateLimitHeaders::Reset::epoch);
    CHECK_FALSE(c.rate_limit);
    REQUIRE(c.upstreams.size() == 1);
    const Upstream& u = c.upstreams[0];
    CHECK(u.name == "default");
    CHECK(u.url == "http://127.0.0.1:9000");
    CHECK(u.host == "127.0.0.1");
    CHECK(u.port == 9000);
    CHECK(u.connect_timeout == Duration{2'000});
    CHECK(u.timeout == Duration{30'000});
    CHECK(u.idle_timeout == Duration{30'000});
    CHECK(u.reuse_check_after == Duration{0});  // check every reuse
    CHECK(u.max_connections == 256);
    REQUIRE(c.routes.size() == 1);
    const Route& r = c.routes[0];
    CHECK(r.name == "default");
    CHECK(r.prefix == "/");
    CHECK(r.host.empty());
    CHECK(r.upstream == "default");
    CHECK(r.upstream_index == 0);
    CHECK_FALSE(r.strip_prefix);
    CHECK(r.host_header == Route::HostHeader::keep);
    CHECK(r.escaped_slashes == Route::EscapedSlashes::reject);
    CHECK(r.problem.normalize);
    CHECK(r.problem.dialect == problem::Dialect::automatic);
    CHECK(r.problem.rules.empty());
    CHECK_FALSE(r.rate_limit);
    CHECK_FALSE(r.max_body_bytes);
    CHECK(c.source == "empty.yaml");
  }

  TEST_CASE("every key is parsed") {
    constexpr std::string_view kAll = R"(
listen: ["127.0.0.1:8081", "[::1]:8082"]
threads: 4
admin: { listen: "[::1]:9902", probes_listen: "[::]:9903" }
limits:
  max_request_line: 4KiB
  max_header_bytes: 16384
  max_header_fields: 50
  max_body_bytes: 10MiB
  request_buffer_bytes: 0
  access_log_buffer_bytes: 256KiB
  header_timeout: 5s
  body_idle_timeout: 250ms
  idle_timeout: 2m
  write_timeout: 1h
  max_requests_per_connection: 7
  max_connections: 9
  drain_timeout: 0s
  tunnel_idle_timeout: 90s
drain: { accept_for: 5s }
request_id: { header: X-Correlation-Id, trust_incoming: false }
trusted_proxies: [10.0.0.0/8, "fd00::/8", 192.0.2.1]
problem:
  type_base: "https://docs.example.com/errors#"
  expose_5xx_detail: true
  max_error_body: 1MiB
  catalog:
    404: { code: not_here, title: Not here }
  legacy_codes:
    QUOTA_EXCEEDED: { code: rate_limited, subcode: quota_exceeded }
    OLD: { subcode: old_thing }
rate_limit_headers: { format: both, reset: delta }
rate_limit: { limit: 1000, window: 1m, key: route }
access_log: off
upstreams:
  a:
    url: http://a.internal:81/
    connect_timeout: 1s
    timeout: 2s
    idle_timeout: 3s
    reuse_check_after: 250ms
    max_connections: 4
  b: http://[::1]
routes:
  - name: r1
    match: { prefix: /api, host: API.Example.com }
    upstream: b
    strip_prefix: true
    host_header: upstream
    escaped_slashes: keep
    normalize: false
    websocket: false
    dialect: nested
    max_body_bytes: 0
    rate_limit: { limit: 3, window: 10s, key: "header:X-Api-Key", burst: 2 }
    rules:
      - when: { status: 503, dialect: html, upstream_code: "E_*", detail_matches: "down" }
        set: { code: upstream_unavailable, subcode: maintenance, title: Down, detail: Later, type: "urn:x" }
      - when: { status: 4xx }
        set: { subcode: other }
  - name: r2
    match: { prefix: /other }
    upstream: a
    rate_limit: off
  - name: r3
    match: { prefix: /inherit }
    upstream: a
)";
    const Config c = load_config_text(kAll, "all.yaml");
    REQUIRE(c.listen.size() == 2);
    CHECK(c.listen[0].to_string() == "127.0.0.1:8081");
    CHECK(c.listen[1].host == "::1");
    CHECK(c.listen[1].port == 8082);
    CHECK(c.threads == 4);
    CHECK(c.admin.listen->host == "::1");
    CHECK(c.admin.listen->port == 9902);
    REQUIRE(c.admin.probes_listen);
    CHECK(c.admin.probes_listen->host == "::");
    CHECK(c.admin.probes_listen->port == 9903);
    CHECK(c.limits.max_request_line == 4096);
    CHECK(c.limits.max_header_bytes == 16384);
    CHECK(c.limits.max_header_fields == 50);
    CHECK(c.limits.max_body_bytes == 10 * 1024 * 1024);
    CHECK(c.limits.request_buffer_bytes == 0);
    CHECK(c.limits.access_log_buffer_bytes == 256 * 1024);
    CHECK_FALSE(c.access_log);
    CHECK(c.limits.header_timeout == Duration{5'000});
    CHECK(c.limits.body_idle_timeout == Duration{250});
    CHECK(c.limits.idle_timeout == Duration{120'000});
    CHECK(c.limits.write_timeout == Duration{3'600'000});
    CHECK(c.limits.max_requests_per_connection == 7);
    CHECK(c.limits.max_connections == 9);
    CHECK(c.limits.drain_timeout == Duration{0});
    CHECK(c.limits.tunnel_idle_timeout == Duration{90'000});
    CHECK(c.drain.accept_for == Duration{5'000});
    CHECK(c.request_id.header == "X-Correlation-Id");
    CHECK_FALSE(c.request_id.trust_incoming);
    REQUIRE(c.trusted_proxies.size() == 3);
    CHECK(c.trusted_proxies[2].prefix == 128);
    CHECK(c.problem.type_base == "https://docs.example.com/errors#");
    CHECK(c.problem.expose_5xx_detail);
    CHECK(c.problem.max_error_body == 1024 * 1024);
    REQUIRE(c.problem.catalog.count(404) == 1);
    CHECK(c.problem.catalog.at(404).code == "not_here");
    CHECK(c.problem.catalog.at(404).title == "Not here");
    CHECK(c.problem.legacy_codes.at("QUOTA_EXCEEDED").code == "rate_limited");
    CHECK(c.problem.legacy_codes.at("QUOTA_EXCEEDED").subcode == "quota_exceeded");
    CHECK(c.problem.legacy_codes.at("OLD").code.empty());
    CHECK(c.rate_limit_headers.format == RateLimitHeaders::Format::both);
    CHECK(c.rate_limit_headers.reset == RateLimitHeaders::Reset::delta);
    REQUIRE(c.rate_limit);
    CHECK(c.rate_limit->key == RateLimitPolicy::Key::route);

    REQUIRE(c.upstreams.size() == 2);
    CHECK(c.upstreams[0].name == "a");  // file order is kept
    CHECK(c.upstreams[0].host == "a.internal");
    CHECK(c.upstreams[0].port == 81);
    CHECK(c.upstreams[0].connect_timeout == Duration{1'000});
    CHECK(c.upstreams[0].timeout == Duration{2'000});
    CHECK(c.upstreams[0].idle_timeout == Duration{3'000});
    CHECK(c.upstreams[0].reuse_check_after == Duration{250});
    CHECK(c.upstreams[0].max_connections == 4);
    CHECK(c.upstreams[1].host == "::1");
    CHECK(c.upstreams[1].port == 80);

    REQUIRE(c.routes.size() == 3);
    const Route& r1 = c.routes[0];
    CHECK(r1.name == "r1");
    CHECK(r1.prefix == "/api");
    CHECK(r1.host == "api.example.com");  // lowercased once, here
    CHECK(r1.upstream_index == 1);
    CHECK(r1.strip_prefix);
    CHECK(r1.host_header == Route::HostHeader::upstream);
    CHECK(r1.escaped_slashes == Route::EscapedSlashes::keep);
    CHECK_FALSE(r1.problem.normalize);
    CHECK_FALSE(r1.websocket);
    CHECK(r1.problem.dialect == problem::Dialect::nested);
    CHECK(r1.max_body_bytes == 0u);
    REQUIRE(r1.rate_limit);
    CHECK(r1.rate_limit->limit == 3);
    CHECK(r1.rate_limit->window == Duration{10'000});
    CHECK(r1.rate_limit->key == RateLimitPolicy::Key::header);
    CHECK(r1.rate_limit->header_name == "X-Api-Key");
    CHECK(r1.rate_limit->burst == 2);
    REQUIRE(r1.problem.rules.size() == 2);
    const auto& rule = r1.problem.rules[0];
    CHECK(rule.when.status == 503);
    CHECK_FALSE(rule.when.status_class);
    CHECK(rule.when.dialect == problem::Dialect::html);
    CHECK(rule.when.upstream_code == "E_*");
    REQUIRE(rule.when.detail_matches);
    CHECK(rule.when.detail_matches->pattern() == "down");
    CHECK(rule.set.code == "upstream_unavailable");
    CHECK(rule.set.subcode == "maintenance");
    CHECK(rule.set.title == "Down");
    CHECK(rule.set.detail == "Later");
    CHECK(rule.set.type == "urn:x");
    CHECK(r1.problem.rules[1].when.status_class == 4);
    CHECK_FALSE(r1.problem.rules[1].when.status);

    CHECK(c.routes[1].upstream_index == 0);
    CHECK(c.routes[1].websocket);         // the default
    CHECK_FALSE(c.routes[1].rate_limit);  // "off" opts out of the default
    REQUIRE(c.routes[2].rate_limit);      // no policy of its own: the default applies
    CHECK(c.routes[2].rate_limit->limit == 1000);
  }

  TEST_CASE("JSON input") {
    constexpr std::string_view kJson = R"({
	"listen": "127.0.0.1:8080",
	"admin": {"listen": "off"},
	"upstreams": {"legacy": {"url": "http://127.0.0.1:9000", "timeout": "5s"}},
	"routes": [{"name": "all", "match": {"prefix": "/"}, "upstream": "legacy",
	            "rules": [{"when": {"status": 404}, "set": {"subcode": "gone"}}]}]
})";
    const Config c = load_config_text(kJson, "t.json");
    CHECK_FALSE(c.admin.listen);
    CHECK(c.upstreams[0].timeout == Duration{5'000});
    CHECK(c.routes[0].problem.rules[0].when.status == 404);

    SUBCASE("errors in JSON still name the pointer") {
      auto e =
          error_of(R"({"upstreams": {"legacy": "http://x:1"}, "routes": [{"upstream": "nope"}]})");
      CHECK(e.find("/routes/0/upstream: unknown upstream \"nope\"") != std::string::npos);
    }
  }

  TEST_CASE("a problem reads FILE:LINE: /pointer: reason") {
    constexpr std::string_view kDoc = R"(upstreams:
  legacy:
    url: http://127.0.0.1:9000
routes:
  - name: a
    match: { prefix: / }
    upstream: legacy
  - name: b
    match: { prefix: /x }
    upstream: legacy
  - name: c
    match: { prefix: /y }
    upstream: legacyy
)";
    CHECK(error_of(kDoc) ==
          "t.yaml:13: /routes/2/upstream: unknown upstream \"legacyy\" (did you mean \"legacy\"?)");
  }

  TEST_CASE("several problems are reported together, in line order") {
    constexpr std::string_view kDoc = R"(listen: nowhere
threads: 0
upstreams:
  legacy: { url: ftp://x:443 }
routes:
  - match: { prefix: api }
    upstream: legacy
    rules:
      - when: { detail_matches: "(" }
        set: { code: BadCode }
limits: { header_timeout: 10 seconds, bogus: 1 }
)";
    auto errors = errors_of(kDoc);
    if (errors.size() != 8) {
      for (const auto& e : errors) MESSAGE(e);
    }
    REQUIRE(errors.size() == 8);
    CHECK(errors[0].starts_with("t.yaml:1: /listen: \"nowhere\": missing port"));
    CHECK(errors[1].starts_with("t.yaml:2: /threads: expected auto or a number from 1 to 1024"));
    CHECK(errors[2].starts_with(
        "t.yaml:4: /upstreams/legacy/url: \"ftp://x:443\": expected an http://HOST:PORT or https://HOST:PORT URL"));
    CHECK(errors[3].starts_with("t.yaml:6: /routes/0/match/prefix: prefix must start with /"));
    CHECK(errors[4].starts_with(
        "t.yaml:9: /routes/0/rules/0/when/detail_matches: invalid regex \"(\": "));
    CHECK(errors[5] ==
          "t.yaml:10: /routes/0/rules/0/set/code: \"BadCode\" is not lowercase_snake_case");
    CHECK(errors[6].starts_with("t.yaml:11: /limits/bogus: unknown key \"bogus\""));
    CHECK(errors[7].starts_with(
        "t.yaml:11: /limits/header_timeout: invalid duration \"10 seconds\""));
  }

  TEST_CASE("error kinds and their paths") {
    struct Row {
      const char* name;
      std::string doc;
      const char* expected;  // a substring of the single problem
    };
    const std::vector<Row> rows = {
        {"unknown top-level key", with("listn: 1.2.3.4:5\n"),
         "/listn: unknown key \"listn\" (did you mean \"listen\"?)"},
        {"unknown nested key", with("limits: { foo: 1 }\n"),
         "/limits/foo: unknown key \"foo\"; expected one of: max_request_line"},
        {"drain unknown key", with("drain: { accept: 1s }\n"),
         "/drain/accept: unknown key \"accept\""},
        {"drain accept_for", with("drain: { accept_for: soon }\n"),
         "/drain/accept_for: invalid duration \"soon\""},
        {"listen empty list", with("listen: []\n"), "/listen: expected at least one address"},
        {"listen bad port", with("listen: 1.2.3.4:70000\n"),
         "/listen: \"1.2.3.4:70000\": invalid port"},
        {"listen unbracketed v6", with("listen: \"::1:80\"\n"), "IPv6 addresses need brackets"},
        {"listen missing host", with("listen: \":8080\"\n"), "/listen: \":8080\": missing host"},
        {"listen list item", with("listen: [\"1.2.3.4:1\", nope]\n"),
         "/listen/1: \"nope\": missing port"},
        {"admin clashes with listen", with("listen: 127.0.0.1:9901\n"),
         "t.yaml: /admin/listen: 127.0.0.1:9901 is also in listen"},
        {"duplicate listen", with("listen: [\"1.2.3.4:5\", \"1.2.3.4:5\"]\n"),
         "t.yaml:6: /listen/1: duplicate address 1.2.3.4:5"},
        {"threads word", with("threads: many\n"), "/threads: expected auto or a number"},
        {"threads too many", with("threads: 5000\n"),
         "/threads: expected auto or a number from 1 to 1024"},
        {"admin bad", with("admin: { listen: yes }\n"), "/admin/listen: \"yes\": missing port"},
        {"admin number", with("admin: { listen: 9901 }\n"),
         "/admin/listen: expected off or HOST:PORT"},
        {"size malformed", with("limits: { max_header_bytes: 32KB }\n"),
         "/limits/max_header_bytes: invalid size \"32KB\""},
        {"size zero", with("limits: { max_request_line: 0 }\n"),
         "/limits/max_request_line: must be greater than 0"},
        {"size negative", with("limits: { max_body_bytes: -1 }\n"),
         "/limits/max_body_bytes: invalid size -1"},
        {"request buffer too large", with("limits: { request_buffer_bytes: 1GiB }\n"),
         "/limits/request_buffer_bytes: must be at most 67108864 bytes"},
        {"access log buffer too small", with("limits: { access_log_buffer_bytes: 1KiB }\n"),
         "/limits/access_log_buffer_bytes: must be at least 4096 bytes"},
        {"duration zero", with("limits: { idle_timeout: 0s }\n"),
         "/limits/idle_timeout: must be greater than 0"},
        {"duration unit", with("limits: { write_timeout: 1d }\n"),
         "/limits/write_timeout: invalid duration \"1d\""},
        {"count zero", with("limits: { max_connections: 0 }\n"),
         "/limits/max_connections: expected a whole number from 1"},
        {"bool", with("request_id: { trust_incoming: yes }\n"),
         "/request_id/trust_incoming: expected true or false, got \"yes\""},
        {"access_log word", with("access_log: quiet\n"),
         "/access_log: expected on, off, true or false, got \"quiet\""},
        {"request id header", with("request_id: { header: \"X Request\" }\n"),
         "/request_id/header: \"X Request\" is not a valid header name"},
        {"trusted proxies not list", with("trusted_proxies: 10.0.0.0/8\n"),
         "/trusted_proxies: expected a list of CIDRs"},
        {"trusted proxy bad", with("trusted_proxies: [10.0.0.0/8, 10.0.0.0/40]\n"),
         "/trusted_proxies/1: invalid CIDR \"10.0.0.0/40\""},
        {"type_base empty", with("problem: { type_base: \"\" }\n"),
         "/problem/type_base: expected a non-empty string"},
        {"max_error_body cap", with("problem: { max_error_body: 17MiB }\n"),
         "/problem/max_error_body: must be at most 16777216 bytes"},
        {"max_error_body zero", with("problem: { max_error_body: 0 }\n"),
         "/problem/max_error_body: must be greater than 0"},
        {"catalog status", with("problem: { catalog: { 399: { code: a, title: A } } }\n"),
         "/problem/catalog/399: catalog keys are HTTP statuses from 400 to 599"},
        {"catalog code case", with("problem: { catalog: { 404: { code: NotFound, title: A } } }\n"),
         "/problem/catalog/404/code: \"NotFound\" is not lowercase_snake_case"},
        {"catalog missing title", with("problem: { catalog: { 404: { code: a } } }\n"),
         "/problem/catalog/404: missing title"},
        {"legacy empty", with("problem: { legacy_codes: { X: {} } }\n"),
         "/problem/legacy_codes/X: expected code, subcode or both"},
        {"legacy bad subcode", with("problem: { legacy_codes: { X: { subcode: a__b } } }\n"),
         "/problem/legacy_codes/X/subcode: \"a__b\" is not lowercase_snake_case"},
        {"rlh format", with("rate_limit_headers: { format: draft }\n"),
         "/rate_limit_headers/format: expected one of x-ratelimit ietf both, got \"draft\""},
        {"rlh reset", with("rate_limit_headers: { reset: relative }\n"),
         "/rate_limit_headers/reset: expected one of epoch delta"},
        {"upstream missing url", "upstreams: { a: { timeout: 1s } }\nroutes: [{}]\n",
         "/upstreams/a: missing url"},
        {"upstream reuse_check_after",
         "upstreams: { a: { url: http://x, reuse_check_after: soon } }\nroutes: [{}]\n",
         "/upstreams/a/reuse_check_after: invalid duration \"soon\""},
        {"upstream ftp", "upstreams: { a: ftp://x }\nroutes: [{}]\n",
         "/upstreams/a: \"ftp://x\": expected an http://HOST:PORT or https://HOST:PORT URL"},
        {"upstream path", "upstreams: { a: http://x:1/api }\nroutes: [{}]\n",
         "/upstreams/a: \"http://x:1/api\": upstream URL must not have a path"},
        {"upstream port 0", "upstreams: { a: http://x:0 }\nroutes: [{}]\n",
         "invalid port \"0\" in upstream URL"},
        {"upstream scheme", "upstreams: { a: \"x:80\" }\nroutes: [{}]\n",
         "expected an http://HOST:PORT or https://HOST:PORT URL"},
        {"upstream name", "upstreams: { \"a b\": http://x }\nroutes: [{}]\n",
         "/upstreams/a b: upstream names may use"},
        {"route not mapping", "upstreams: { a: http://x }\nroutes: [{}, 3]\n",
         "/routes/1: expected a mapping, got 3"},
        {"route unknown upstream", route_with("    upstream: nope\n"),
         "/routes/0/upstream: unknown upstream \"nope\""},
        {"route missing upstream", "upstreams: { a: http://x, b: http://y }\nroutes: [{}]\n",
         "/routes/0/upstream: missing upstream"},
        {"route host with port",
         "upstreams: { a: http://x }\nroutes: [{ match: { host: \"a.com:80\" } }]\n",
         "/routes/0/match/host: host must not include a port"},
        {"route host bad",
         "upstreams: { a: http://x }\nroutes: [{ match: { host: \"a..com\" } }]\n",
         "/routes/0/match/host: invalid host \"a..com\""},
        {"host_header", route_with("    host_header: rewrite\n"),
         "/routes/0/host_header: expected one of keep upstream"},
        {"escaped_slashes", route_with("    escaped_slashes: decode\n"),
         "/routes/0/escaped_slashes: expected one of reject keep"},
        {"prefix not normal",
         "upstreams: { a: http://x }\nroutes: [{ match: { prefix: \"/api//v1/./x\" } }]\n",
         "/routes/0/match/prefix: prefix must be a normalized path (no dot segments, repeated slashes or encoded unreserved characters): did you mean \"/api/v1/x\"?"},
        {"prefix escaped unreserved",
         "upstreams: { a: http://x }\nroutes: [{ match: { prefix: \"/%61pi\" } }]\n",
         "did you mean \"/api\"?"},
        {"prefix above root",
         "upstreams: { a: http://x }\nroutes: [{ match: { prefix: \"/../x\" } }]\n",
         "/routes/0/match/prefix: prefix must be a normalized path"},
        {"dialect", route_with("    dialect: soap\n"),
         "/routes/0/dialect: unknown dialect \"soap\""},
        {"rate limit zero", route_with("    rate_limit: { limit: 0 }\n"),
         "/routes/0/rate_limit/limit: expected a whole number from 1"},
        {"rate limit missing limit", route_with("    rate_limit: { window: 1s }\n"),
         "/routes/0/rate_limit: missing limit"},
        {"rate limit window", route_with("    rate_limit: { limit: 1, window: 0ms }\n"),
         "/routes/0/rate_limit/window: must be greater than 0"},
        {"rate limit key", route_with("    rate_limit: { limit: 1, key: cookie }\n"),
         "/routes/0/rate_limit/key: expected client_ip, route or header:NAME, got \"cookie\""},
        {"rate limit header key", route_with("    rate_limit: { limit: 1, key: \"header:\" }\n"),
         "/routes/0/rate_limit/key: expected client_ip"},
        {"rate limit burst", route_with("    rate_limit: { limit: 1, burst: -1 }\n"),
         "/routes/0/rate_limit/burst: expected a whole number from 0"},
        {"rate limit scalar", route_with("    rate_limit: 5\n"),
         "/routes/0/rate_limit: expected off or {limit, window, key, burst}"},
        {"top-level rate limit", with("rate_limit: { limit: 1, window: soon }\n"),
         "/rate_limit/window: invalid duration \"soon\""},
        {"rules not list", route_with("    rules: { when: {} }\n"),
         "/routes/0/rules: expected a list of {when, set}"},
        {"rule empty when", route_with("    rules: [{ when: {}, set: { code: a } }]\n"),
         "/routes/0/rules/0/when: a rule needs at least one condition"},
        {"rule missing set", route_with("    rules: [{ when: { status: 500 } }]\n"),
         "/routes/0/rules/0/set: a rule needs at least one field to set"},
        {"rule status", route_with("    rules: [{ when: { status: 200 }, set: { code: a } }]\n"),
         "/routes/0/rules/0/when/status: expected a status from 400 to 599, 4xx or 5xx, got 200"},
        {"rule status class",
         route_with("    rules: [{ when: { status: 3xx }, set: { code: a } }]\n"),
         "/routes/0/rules/0/when/status: expected a status"},
        {"rule dialect", route_with("    rules: [{ when: { dialect: x }, set: { code: a } }]\n"),
         "/routes/0/rules/0/when/dialect: unknown dialect \"x\""},
        {"rule unknown when key",
         route_with("    rules: [{ when: { method: GET }, set: { code: a } }]\n"),
         "/routes/0/rules/0/when/method: unknown key"},
        {"rule unknown set key",
         route_with("    rules: [{ when: { status: 4xx }, set: { status: 400 } }]\n"),
         "/routes/0/rules/0/set/status: unknown key"},
        {"route max body", route_with("    max_body_bytes: lots\n"),
         "/routes/0/max_body_bytes: invalid size \"lots\""},
        {"duplicate key", with("threads: 1\nthreads: 2\n"), "/threads: duplicate key \"threads\""},
        {"invalid yaml", "routes: [\n", "t.yaml:2: invalid YAML: "},
    };
    for (const auto& row : rows) {
      SUBCASE(row.name) {
        const std::string e = error_of(row.doc);
        CAPTURE(row.doc);
        CHECK_MESSAGE(e.find(row.expected) != std::string::npos, e);
        CHECK(e.starts_with("t.yaml"));
      }
    }
  }

  TEST_CASE("a broken section also leaves what it would have defined missing") {
    // Reported as well, since the operator has to fix both; the pointer says where.
    auto errors = errors_of("- a\n- b\n");
    REQUIRE(errors.size() == 2);
    CHECK(errors[0] == "t.yaml: expected a mapping of settings at the top level, got a list");
    CHECK(errors[1] == "t.yaml: no upstream configured: pass --upstream URL or a config file");

    errors = errors_of("upstreams: [a]\n");
    REQUIRE(errors.size() == 2);
    CHECK(errors[1] ==
          "t.yaml:1: /upstreams: expected a mapping of name -> {url, ...}, got a list");

    errors = errors_of("upstreams: { a: http://x }\nroutes: { a: 1 }\n");
    REQUIRE(errors.size() == 2);
    CHECK(errors[0] == "t.yaml:2: /routes: expected a list of routes, got a mapping");
  }

  TEST_CASE("route cross checks") {
    SUBCASE("duplicate names") {
      auto e = error_of(R"(upstreams: { a: http://x }
routes:
  - { name: same, match: { prefix: /a } }
  - { name: same, match: { prefix: /b } }
)");
      CHECK(e == "t.yaml:4: /routes/1/name: duplicate route name \"same\" (also /routes/0)");
    }
    SUBCASE("overlapping routes") {
      auto e = error_of(R"(upstreams: { a: http://x }
routes:
  - { name: one, match: { prefix: /a, host: h.com } }
  - { name: two, match: { prefix: /a, host: H.com } }
)");
      CHECK(
          e ==
          "t.yaml:4: /routes/1/match: overlapping routes: same prefix \"/a\" and host \"h.com\" as /routes/0 (\"one\")");
    }
    SUBCASE("same prefix, different hosts is fine") {
      CHECK(errors_of(R"(upstreams: { a: http://x }
routes:
  - { match: { prefix: /a, host: h.com } }
  - { match: { prefix: /a } }
)")
                .empty());
    }
    SUBCASE("unnamed routes are named by what they match") {
      const Config c = load_config_text(
          "upstreams: { a: http://x }\nroutes: [{ match: { prefix: /a, host: h.com } }, {}]\n",
          "t");
      CHECK(c.routes[0].name == "h.com/a");
      CHECK(c.routes[1].name == "/");
      CHECK(c.routes[1].upstream == "a");  // the only upstream is implied
    }
    SUBCASE("prefix with a query") {
      auto e = error_of("upstreams: { a: http://x }\nroutes: [{ match: { prefix: \"/a?b\" } }]\n");
      CHECK(e.find("/routes/0/match/prefix: prefix must be a path") != std::string::npos);
    }
    SUBCASE("no routes") {
      auto e = error_of("upstreams: { a: http://x }\n");
      CHECK(
          e ==
          "t.yaml: /routes: no routes configured: add one (match: {prefix: /}) or pass --upstream URL");
    }
  }

  TEST_CASE("rules: regex and (?i)") {
    const Config c = load_config_text(route_with(R"(    rules:
      - when: { detail_matches: "(?i)time ?out" }
        set: { subcode: upstream_timeout }
      - when: { detail_matches: "^Quota" }
        set: { subcode: quota }
)"),
                                      "t");
    const auto& rules = c.routes[0].problem.rules;
    REQUIRE(rules.size() == 2);
    REQUIRE(rules[0].when.detail_matches);
    CHECK(rules[0].when.detail_matches->pattern() == "(?i)time ?out");
    CHECK(rules[0].when.detail_matches->search("Gateway TIMEOUT"));
    CHECK(rules[0].when.detail_matches->search("time out"));
    CHECK_FALSE(rules[0].when.detail_matches->search("timer"));
    CHECK(rules[1].when.detail_matches->search("Quota exceeded"));
    CHECK_FALSE(
        rules[1].when.detail_matches->search("quota exceeded"));  // case-sensitive by default

    SUBCASE("a bad regex names file, route and rule") {
      auto e = error_of(
          route_with("    rules:\n      - when: { status: 4xx }\n        set: { code: a }\n"
                     "      - when: { detail_matches: \"[a-\" }\n        set: { code: a }\n"));
      CHECK(e.starts_with(
          "t.yaml:8: /routes/0/rules/1/when/detail_matches: invalid regex \"[a-\": "));
    }
    SUBCASE("(?i) anywhere is an inline flag (RE2 syntax)") {
      const Config c2 = load_config_text(
          route_with("    rules: [{ when: { detail_matches: \"a(?i)b\" }, set: { code: a } }]\n"),
          "t");
      CHECK(c2.routes[0].problem.rules[0].when.detail_matches->search("xaBx"));
      CHECK_FALSE(c2.routes[0].problem.rules[0].when.detail_matches->search("xABx"));
    }
    SUBCASE("backreferences and lookaround are refused with a reason") {
      CHECK(
          error_of(route_with(
              "    rules: [{ when: { detail_matches: '(a)\\1' }, set: { code: a } }]\n")) ==
          "t.yaml:5: /routes/0/rules/0/when/detail_matches: invalid regex \"(a)\\1\": invalid escape sequence: \\1 "
          "(backreferences are not supported: RE2 matches in linear time)");
      CHECK(
          error_of(route_with(
              "    rules: [{ when: { detail_matches: 'a(?=b)' }, set: { code: a } }]\n")) ==
          "t.yaml:5: /routes/0/rules/0/when/detail_matches: invalid regex \"a(?=b)\": invalid perl operator: (?= "
          "(lookahead and lookbehind are not supported: RE2 matches in linear time)");
    }
    SUBCASE("every bad regex is reported, each with its rule's path") {
      auto errors = errors_of(route_with(
          "    rules:\n      - when: { detail_matches: \"(\" }\n        set: { code: a }\n"
          "      - when: { detail_matches: '(?<=x)y' }\n        set: { code: a }\n"));
      REQUIRE(errors.size() == 2);
      CHECK(errors[0] ==
            "t.yaml:6: /routes/0/rules/0/when/detail_matches: invalid regex \"(\": missing ): (");
      CHECK(errors[1].starts_with(
          "t.yaml:8: /routes/0/rules/1/when/detail_matches: invalid regex \"(?<=x)y\": "));
    }
  }

  TEST_CASE("YAML plain scalars: core-schema floats") {
    // Checked by hand since std::regex left src/; the grammar is [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?.
    auto resolve = [](const std::string& scalar) {
      detail::LineMap lines;
      detail::Diagnostics diag("t.yaml", &lines);
      return detail::yaml_to_json("v: " + scalar + "\n", lines, diag)["v"];
    };
    for (const char* f :
         {"1.5", "-1.5", "+0.25", ".5", "-.5", "1.", "1e3", "1E-3", "2.5e+10", ".5e1"}) {
      CAPTURE(f);
      CHECK(resolve(f).is_number_float());
    }
    CHECK(resolve("1.5") == 1.5);
    CHECK(resolve("-.5") == -0.5);
    for (const char* s :
         {".", "+.", "e5", "1e", "1e+", "1.5.2", "1.5x", ".inf", "1_000.0", "1e5.0"}) {
      CAPTURE(s);
      CHECK(resolve(s).is_string());
    }
    CHECK(resolve("1e999").is_string());  // out of double range: left as text
    CHECK(resolve("42").is_number_unsigned());
  }

  TEST_CASE("YAML scalars follow the core schema") {
    // `off` stays a string (YAML 1.1 would make it false); a quoted number stays text.
    Config c = load_config_text(with("admin: { listen: off }\n"), "t");
    CHECK_FALSE(c.admin.listen);
    CHECK(errors_of(with("threads: \"4\"\n")).size() == 1);
    c = load_config_text(with("problem: { type_base: null }\nthreads: ~\n"), "t");
    CHECK_FALSE(c.problem.type_base);
    CHECK(c.threads == 0);
    c = load_config_text(with("admin: { listen: false }\n"), "t");
    CHECK_FALSE(c.admin.listen);
    // header:NAME without quotes in block style
    c = load_config_text(
        route_with("    rate_limit:\n      limit: 1\n      key: header:Authorization\n"), "t");
    CHECK(c.routes[0].rate_limit->header_name == "Authorization");
  }

  TEST_CASE("overrides and zero-config") {
    SUBCASE("flags alone") {
      Overrides o;
      o.listen = "127.0.0.1:0";
      o.upstream = "http://localhost:9000";
      o.threads = 2;
      const Config c = load_config_flags(o);
      CHECK(c.source == "<flags>");
      CHECK(c.listen.size() == 1);
      CHECK(c.listen[0].port == 0);  // port 0: the integration test discovers the real one
      CHECK(c.threads == 2);
      CHECK(c.upstreams.at(0).host == "localhost");
      CHECK(c.routes.at(0).prefix == "/");
    }
    SUBCASE("nothing at all") {
      try {
        load_config_flags({});
        FAIL("expected ConfigError");
      } catch (const ConfigError& e) {
        REQUIRE(e.problems().size() == 1);
        CHECK(e.problems()[0] ==
              "<flags>: no upstream configured: pass --upstream URL or a config file");
        CHECK(std::string(e.what()) == e.problems()[0]);
      }
    }
    SUBCASE("bad flags") {
      Overrides o;
      o.listen = "localhost";
      o.upstream = "ftp://x";
      o.threads = 2000;
      auto errors = errors_of("", o);
      if (errors.size() != 4) {
        for (const auto& e : errors) MESSAGE(e);
      }
      REQUIRE(errors.size() == 4);
      CHECK(errors[0] == "t.yaml: --listen \"localhost\": missing port: expected HOST:PORT");
      CHECK(errors[1].starts_with(
          "t.yaml: --upstream \"ftp://x\": expected an http://HOST:PORT or https://HOST:PORT URL"));
      CHECK(errors[2].starts_with("t.yaml: --threads 2000"));
      CHECK(errors[3].starts_with("t.yaml: no upstream configured"));
    }
    SUBCASE("--listen replaces the file's list, and takes a comma list") {
      Overrides o;
      o.listen = "127.0.0.1:1, [::1]:2";
      const Config c = load_config_text(with("listen: [\"0.0.0.0:9\", \"0.0.0.0:10\"]\n"), "t", o);
      REQUIRE(c.listen.size() == 2);
      CHECK(c.listen[0].to_string() == "127.0.0.1:1");
      CHECK(c.listen[1].to_string() == "[::1]:2");
    }
    SUBCASE("--upstream next to a file with routes adds no route") {
      Overrides o;
      o.upstream = "http://10.0.0.1:7000";
      const Config c = load_config_text(kMinimal, "t", o);
      REQUIRE(c.upstreams.size() == 2);
      CHECK(c.upstreams[1].name == "default");
      REQUIRE(c.routes.size() == 1);
      CHECK(c.routes[0].upstream == "legacy");
    }
    SUBCASE("--upstream replaces the file's default upstream but keeps its tuning") {
      Overrides o;
      o.upstream = "http://10.0.0.1:7000";
      const Config c =
          load_config_text("upstreams: { default: { url: http://x:1, timeout: 3s } }\n", "t", o);
      REQUIRE(c.upstreams.size() == 1);
      CHECK(c.upstreams[0].host == "10.0.0.1");
      CHECK(c.upstreams[0].port == 7000);
      CHECK(c.upstreams[0].timeout == Duration{3'000});
      REQUIRE(c.routes.size() == 1);  // the file had no routes
      CHECK(c.routes[0].name == "default");
    }
    SUBCASE("the zero-config route inherits the file's default rate limit") {
      Overrides o;
      o.upstream = "http://10.0.0.1:7000";
      const Config c = load_config_text("rate_limit: { limit: 9 }\n", "t", o);
      REQUIRE(c.routes.at(0).rate_limit);
      CHECK(c.routes[0].rate_limit->limit == 9);
    }
  }

  TEST_CASE("files") {
    SUBCASE("missing file") {
      try {
        load_config_file("/nonexistent/problemgate.yaml");
        FAIL("expected ConfigError");
      } catch (const ConfigError& e) {
        REQUIRE(e.problems().size() == 1);
        CHECK(e.problems()[0].starts_with("/nonexistent/problemgate.yaml: cannot open: "));
      }
    }
    SUBCASE("messages name the file path") {
      const auto path = std::filesystem::temp_directory_path() / "problemgate_config_test.yaml";
      {
        std::ofstream out(path);
        out << "upstreams:\n  a: http://x\nroutes:\n  - upstream: b\n";
      }
      try {
        load_config_file(path.string());
        FAIL("expected ConfigError");
      } catch (const ConfigError& e) {
        REQUIRE(e.problems().size() == 1);
        CHECK(e.problems()[0] == path.string() + ":4: /routes/0/upstream: unknown upstream \"b\"");
      }
      std::filesystem::remove(path);
    }
  }
}

TEST_CASE("upstream endpoints, balancing, outlier, health checks and retries") {
  using problemgate::config::Upstream;
  using problemgate::config::test::error_of;
  using problemgate::config::test::errors_of;
  SUBCASE("endpoints instead of url, with every key") {
    const auto c = problemgate::config::load_config_text(R"(
upstreams:
  a:
    endpoints: [http://127.0.0.1:1, "http://[::1]:2"]
    resolve: 0
    lb: least_request
    health_check: { path: /ready, interval: 2s, timeout: 500ms, unhealthy_threshold: 4, healthy_threshold: 1 }
    outlier: { consecutive_failures: 0, ejection_time: 1s, max_ejected_percent: 100 }
    retries: { attempts: 3, on: [connect_failure], methods: [GET, PUT], budget_percent: 50, budget_reserve: 0 }
routes:
  - match: { prefix: / }
)",
                                                         "t.yaml", {});
    const auto& u = c.upstreams.at(0);
    REQUIRE(u.endpoints.size() == 2);
    CHECK(u.endpoints[1].host == "::1");
    CHECK(u.host == "127.0.0.1");
    CHECK(u.resolve.count() == 0);
    CHECK(u.lb == Upstream::Lb::least_request);
    REQUIRE(u.health_check);
    CHECK(u.health_check->path == "/ready");
    CHECK(u.health_check->unhealthy_threshold == 4);
    CHECK(u.outlier.consecutive_failures == 0);
    CHECK(u.outlier.max_ejected_percent == 100);
    CHECK(u.retries.attempts == 3);
    CHECK(u.retries.on_connect_failure);
    CHECK_FALSE(u.retries.on_reset);
    CHECK(u.retries.methods == (problemgate::config::kRetryGet | problemgate::config::kRetryPut));
    CHECK(u.retries.budget_percent == 50);
  }
  SUBCASE("url alone is one endpoint; defaults") {
    const auto c = problemgate::config::load_config_text(
        "upstreams: { a: http://x:1 }\nroutes: [{ match: { prefix: / } }]\n", "t.yaml", {});
    const auto& u = c.upstreams.at(0);
    REQUIRE(u.endpoints.size() == 1);
    CHECK(u.endpoints[0].host == "x");
    CHECK(u.lb == Upstream::Lb::round_robin);
    CHECK_FALSE(u.health_check);
    CHECK(u.outlier.consecutive_failures == 5);
    CHECK(u.retries.attempts == 1);
    CHECK(u.retries.methods == problemgate::config::kRetryDefaultMethods);
  }
  SUBCASE("mistakes") {
    CHECK(
        error_of(
            "upstreams: { a: { url: http://x:1, endpoints: [http://y:1] } }\nroutes: [{ match: { prefix: / } }]\n") ==
        "t.yaml:1: /upstreams/a: set url or endpoints, not both");
    CHECK(
        error_of("upstreams: { a: { endpoints: [] } }\nroutes: [{ match: { prefix: / } }]\n") ==
        "t.yaml:1: /upstreams/a/endpoints: expected a non-empty list of http(s)://HOST:PORT URLs, got a list");
    CHECK(
        error_of(
            "upstreams: { a: { endpoints: [http://y:1, http://y:1] } }\nroutes: [{ match: { prefix: / } }]\n") ==
        "t.yaml:1: /upstreams/a/endpoints/1: \"http://y:1\" is listed twice");
    CHECK(
        error_of(
            "upstreams: { a: { url: http://x:1, lb: random } }\nroutes: [{ match: { prefix: / } }]\n") ==
        "t.yaml:1: /upstreams/a/lb: expected one of round_robin least_request, got \"random\"");
    CHECK(
        error_of(
            "upstreams: { a: { url: http://x:1, retries: { methods: [POST] } } }\nroutes: [{ match: { prefix: / } }]\n") ==
        "t.yaml:1: /upstreams/a/retries/methods/0: expected one of GET, HEAD, OPTIONS, PUT, DELETE, got \"POST\"");
    CHECK(
        error_of(
            "upstreams: { a: { url: http://x:1, health_check: { path: healthz } } }\nroutes: [{ match: { prefix: / } }]\n") ==
        "t.yaml:1: /upstreams/a/health_check/path: expected an absolute path like /healthz, got \"healthz\"");
  }
}
