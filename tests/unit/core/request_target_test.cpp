#include "problemgate/core/request_target.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace problemgate::core;

namespace {

struct Normalized {
  PathVerdict verdict;
  std::string path;
  bool escaped;
};

Normalized norm(std::string_view p) {
  Normalized n{};
  n.verdict = normalize_path(p, n.path, n.escaped);
  return n;
}

}  // namespace

TEST_SUITE("core.request_target") {
  TEST_CASE("normal paths are kept byte for byte") {
    for (std::string_view p : {"/", "/limited", "/a/b/c", "/a/b/", "/a.b/c..d/.e", "/~user/x-y_z",
                               "/%E2%82%AC", "/a%20b", "/café"}) {
      const auto n = norm(p);
      CHECK(n.verdict == PathVerdict::ok);
      CHECK(n.path == p);
      CHECK_FALSE(n.escaped);
    }
  }

  TEST_CASE("every bypass of the adversarial run normalizes to /limited or is flagged") {
    // The nine paths a catch-all route answered while /limited's quota was spent.
    CHECK(norm("//limited").path == "/limited");
    CHECK(norm("/./limited").path == "/limited");
    CHECK(norm("/x/../limited").path == "/limited");
    CHECK(norm("/%6cimited").path == "/limited");
    CHECK(norm("/%2e/limited").path == "/limited");
    CHECK(norm("/x/%2e%2e/limited").path == "/limited");
    CHECK(norm("/x/%2E%2e/limited").path == "/limited");
    for (std::string_view p : {"/%2flimited", "/x/..%2flimited", "/limited%2fx", "/limited%5cx"}) {
      const auto n = norm(p);
      CHECK(n.verdict == PathVerdict::ok);
      CHECK(n.escaped);  // the caller refuses these unless the route keeps them
    }
    CHECK(norm("/%2flimited").path == "/%2Flimited");
    CHECK(norm("/x/..%2flimited").path == "/x/..%2Flimited");  // not a dot segment: data
  }

  TEST_CASE("dot segments, merged slashes and trailing slashes follow RFC 3986 5.2.4") {
    CHECK(norm("/a/b/../c").path == "/a/c");
    CHECK(norm("/a/./b").path == "/a/b");
    CHECK(norm("/a/.").path == "/a/");
    CHECK(norm("/a/..").path == "/");
    CHECK(norm("/a/b/..").path == "/a/");
    CHECK(norm("/.").path == "/");
    CHECK(norm("//").path == "/");
    CHECK(norm("///a///b//").path == "/a/b/");
    CHECK(norm("/a/.../b").path == "/a/.../b");  // three dots are a name
    CHECK(norm("/a/.b/..c").path == "/a/.b/..c");
  }

  TEST_CASE("escapes: unreserved decoded, the rest upper-cased") {
    CHECK(norm("/%41%7a%2D%2e%5F%7E").path == "/Az-._~");
    CHECK(norm("/a%20b%e2%82%ac").path == "/a%20b%E2%82%AC");
    CHECK(norm("/%3f").path == "/%3F");  // an encoded '?' stays data, not a query
    CHECK(norm("/%00").path == "/%00");
  }

  TEST_CASE("bad input is refused, never guessed at") {
    CHECK(norm("/..").verdict == PathVerdict::above_root);
    CHECK(norm("/a/../..").verdict == PathVerdict::above_root);
    CHECK(norm("/%2e%2e/etc").verdict == PathVerdict::above_root);
    CHECK(norm("/%").verdict == PathVerdict::bad_escape);
    CHECK(norm("/%4").verdict == PathVerdict::bad_escape);
    CHECK(norm("/%zz").verdict == PathVerdict::bad_escape);
    CHECK(norm("/%4/x").verdict == PathVerdict::bad_escape);  // an escape never spans a '/'
    CHECK(norm("/a\\b").verdict == PathVerdict::bad_character);
    CHECK(norm("/x/..\\limited").verdict == PathVerdict::bad_character);
  }

  TEST_CASE("normalizing twice changes nothing") {
    for (std::string_view p : {"//a/./b/../c/%7e%2f%20", "/x/%2e%2e/y//z/", "/%6cimited"}) {
      const auto once = norm(p);
      REQUIRE(once.verdict == PathVerdict::ok);
      CHECK(norm(once.path).path == once.path);
    }
  }

  TEST_CASE("origin-form targets") {
    auto t = split_request_target("/api/x?q=1&r");
    CHECK(t.form == TargetParts::Form::origin);
    CHECK(t.path == "/api/x");
    CHECK(t.query == "?q=1&r");
    CHECK(t.authority.empty());
    t = split_request_target("/");
    CHECK(t.path == "/");
    CHECK(t.query.empty());
  }

  TEST_CASE("absolute-form targets give their authority and an origin-form rest") {
    auto t = split_request_target("http://h/limited");
    CHECK(t.form == TargetParts::Form::absolute);
    CHECK(t.authority == "h");
    CHECK(t.path == "/limited");
    t = split_request_target("HTTPS://Example.com:8443/a?b");
    CHECK(t.form == TargetParts::Form::absolute);
    CHECK(t.authority == "Example.com:8443");
    CHECK(t.path == "/a");
    CHECK(t.query == "?b");
    t = split_request_target("http://h");
    CHECK(t.path == "/");
    t = split_request_target("http://h?x");
    CHECK(t.path == "/");
    CHECK(t.query == "?x");
    t = split_request_target("http://[::1]:80/x");
    CHECK(t.authority == "[::1]:80");
  }

  TEST_CASE("other forms, fragments and userinfo are invalid") {
    for (std::string_view s :
         {"", "*", "h:443", "api/x", "/api#frag", "/api?x#f", "http://u:p@h/x", "http:///x",
          "ftp://h/x", "http://h#f", "http://a b/x", "http://h:99999/x"})
      CHECK_MESSAGE(split_request_target(s).form == TargetParts::Form::invalid, s);
  }

  TEST_CASE("Host values follow the authority grammar") {
    for (std::string_view h : {"", "example.com", "example.com:8080", "127.0.0.1", "127.0.0.1:1",
                               "[::1]", "[::1]:8080", "a-b_c.~x", "%41bc", "h:", "x!$&'()*+,;="})
      CHECK_MESSAGE(is_valid_authority(h), h);
    for (std::string_view h : {"a b@c/d", "u@h", "h/x", "h:8o", "h:123456", ":80", "[::1", "[]",
                               "[zz]", "h:1:2", "h?x", "h#x", "%4", "h\\x", "[::1]x"})
      CHECK_MESSAGE(!is_valid_authority(h), h);
  }
}
