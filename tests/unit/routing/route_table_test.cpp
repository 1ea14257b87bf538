#include "problemgate/routing/route_table.hpp"

#include <doctest/doctest.h>

using namespace problemgate;
using routing::RouteTable;

namespace {

config::Route make(std::string name, std::string prefix, std::string host = {}) {
  config::Route r;
  r.name = std::move(name);
  r.prefix = std::move(prefix);
  r.host = std::move(host);
  return r;
}

std::string matched(const RouteTable& t, std::string_view host, std::string_view target) {
  const config::Route* r = t.match(host, target);
  return r ? r->name : "<none>";
}

std::string stripped(std::string_view prefix, std::string_view target) {
  std::string out = "X";  // strip_prefix appends
  routing::strip_prefix(prefix, target, out);
  return out.substr(1);
}

}  // namespace

TEST_SUITE("routing.route_table") {
  TEST_CASE("longest prefix wins, whatever the file order") {
    const std::vector<config::Route> routes = {make("root", "/"), make("api", "/api"),
                                               make("v1", "/api/v1")};
    const RouteTable t(routes);
    CHECK(matched(t, "h", "/") == "root");
    CHECK(matched(t, "h", "/other") == "root");
    CHECK(matched(t, "h", "/api") == "api");
    CHECK(matched(t, "h", "/api/v2/x") == "api");
    CHECK(matched(t, "h", "/api/v1") == "v1");
    CHECK(matched(t, "h", "/api/v1/agents?x=1") == "v1");
  }

  TEST_CASE("segment boundaries") {
    const std::vector<config::Route> routes = {make("api", "/api"), make("dir", "/files/")};
    const RouteTable t(routes);
    CHECK(matched(t, "", "/api") == "api");
    CHECK(matched(t, "", "/api/") == "api");
    CHECK(matched(t, "", "/api/x") == "api");
    CHECK(matched(t, "", "/api?q=1") == "api");
    CHECK(matched(t, "", "/apix") == "<none>");
    CHECK(matched(t, "", "/ap") == "<none>");
    CHECK(matched(t, "", "/files/") == "dir");
    CHECK(matched(t, "", "/files/a/b") == "dir");
    CHECK(matched(t, "", "/files") == "<none>");  // "/files/" is "under /files/", not /files itself
    CHECK(matched(t, "", "/x?/api") == "<none>");  // only the path before '?' counts
    CHECK(matched(t, "", "") == "<none>");
  }

  TEST_CASE("host-specific before any-host on the same prefix; longest prefix still first") {
    const std::vector<config::Route> routes = {
        make("any-api", "/api"), make("h-api", "/api", "api.example.com"),
        make("h-root", "/", "api.example.com"), make("any-v1", "/api/v1")};
    const RouteTable t(routes);
    CHECK(matched(t, "api.example.com", "/api/x") == "h-api");
    CHECK(matched(t, "API.Example.COM:8443", "/api/x") == "h-api");  // case and port ignored
    CHECK(matched(t, "api.example.com.", "/api/x") == "h-api");      // trailing dot
    CHECK(matched(t, "other.com", "/api/x") == "any-api");
    CHECK(matched(t, "", "/api/x") == "any-api");
    CHECK(matched(t, "api.example.com", "/api/v1/x") == "any-v1");  // longer prefix beats host
    CHECK(matched(t, "api.example.com", "/z") == "h-root");
    CHECK(matched(t, "other.com", "/z") == "<none>");
    CHECK(matched(t, "api.example.com.evil", "/z") == "<none>");
  }

  TEST_CASE("IPv6 host headers") {
    const std::vector<config::Route> routes = {make("v6", "/", "[::1]")};
    const RouteTable t(routes);
    CHECK(matched(t, "[::1]:8080", "/") == "v6");
    CHECK(matched(t, "[::1]", "/") == "v6");
    CHECK(matched(t, "[::2]:8080", "/") == "<none>");
  }

  TEST_CASE("empty table") {
    const std::vector<config::Route> routes;
    CHECK(RouteTable(routes).match("h", "/") == nullptr);
  }

  TEST_CASE("host_without_port") {
    CHECK(routing::host_without_port("a.com:80") == "a.com");
    CHECK(routing::host_without_port("a.com") == "a.com");
    CHECK(routing::host_without_port("[::1]:80") == "[::1]");
    CHECK(routing::host_without_port("") == "");
  }

  TEST_CASE("strip_prefix") {
    CHECK(stripped("/api", "/api/x?q=1") == "/x?q=1");
    CHECK(stripped("/api", "/api") == "/");
    CHECK(stripped("/api", "/api?q=1") == "/?q=1");
    CHECK(stripped("/api", "/api/") == "/");
    CHECK(stripped("/api/", "/api/x/y") == "/x/y");
    CHECK(stripped("/api/", "/api/") == "/");
    CHECK(stripped("/", "/a/b?c") == "/a/b?c");
    CHECK(stripped("/api", "/apix") == "/apix");  // not under the prefix: unchanged
    CHECK(stripped("/api", "/other") == "/other");
  }

  TEST_CASE("append_upstream_target follows route.strip_prefix") {
    config::Route r = make("r", "/svc");
    std::string out;
    routing::append_upstream_target(r, "/svc/a?b", out);
    CHECK(out == "/svc/a?b");
    r.strip_prefix = true;
    out.clear();
    routing::append_upstream_target(r, "/svc/a?b", out);
    CHECK(out == "/a?b");
  }
}
