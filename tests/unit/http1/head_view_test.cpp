#include "problemgate/http1/head_view.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "problemgate/http1/message_writer.hpp"

using namespace problemgate::http1;

namespace {

struct Scanned {
  std::string bytes;
  std::vector<FieldSpan> spans;
  HeadScan scan;
  HeadView view() const { return HeadView{bytes, spans}; }
};

Scanned request(std::string raw) {
  Scanned s{std::move(raw), {}, {}};
  s.scan = scan_request_head(s.bytes, HeadLimits{}, &s.spans);
  REQUIRE(s.scan.verdict == HeadVerdict::ok);
  return s;
}

}  // namespace

TEST_SUITE("http1.head_view") {
  TEST_CASE("the scanner records the start line and every field, values trimmed") {
    const auto s =
        request("PATCH /a/b?c=1 HTTP/1.1\r\nHost: x\r\nX-A:  spaced \t\r\nX-Empty:\r\n\r\n");
    CHECK(s.bytes.substr(0, s.scan.method_len) == "PATCH");
    CHECK(s.bytes.substr(s.scan.target_off, s.scan.target_len) == "/a/b?c=1");
    const HeadView v = s.view();
    REQUIRE(v.fields.size() == 3);
    CHECK(v.name(v.fields[1]) == "X-A");
    CHECK(v.value(v.fields[1]) == "spaced");
    CHECK(v.get("x-a") == "spaced");
    CHECK(v.get("HOST") == "x");
    CHECK(v.find("x-empty") != nullptr);
    CHECK(v.get("x-empty").empty());
    CHECK(v.find("x-missing") == nullptr);
  }

  TEST_CASE("response start line: status and reason") {
    Scanned s{"HTTP/1.1 404 Not Here\r\nContent-Length: 0\r\n\r\n", {}, {}};
    s.scan = scan_response_head(s.bytes, HeadLimits{}, &s.spans);
    REQUIRE(s.scan.verdict == HeadVerdict::ok);
    CHECK(s.scan.status == 404);
    CHECK(s.bytes.substr(s.scan.reason_off, s.scan.reason_len) == "Not Here");
    Scanned e{"HTTP/1.1 204 \r\n\r\n", {}, {}};
    e.scan = scan_response_head(e.bytes, HeadLimits{}, &e.spans);
    REQUIRE(e.scan.verdict == HeadVerdict::ok);
    CHECK(e.scan.reason_len == 0);
  }

  TEST_CASE("token lists: any line, any case, OWS around commas") {
    const auto s = request("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive ,  Close\r\n\r\n");
    CHECK(s.view().has_token("connection", "close"));
    CHECK_FALSE(s.view().has_token("connection", "upgrade"));
    const auto t =
        request("GET / HTTP/1.1\r\nHost: x\r\nConnection: a\r\nconnection: b, close\r\n\r\n");
    CHECK(t.view().has_token("Connection", "close"));
  }

  TEST_CASE("count: the lines of a name, in any case, empty values included") {
    const auto s =
        request("GET / HTTP/1.1\r\nHost: x\r\nX-Api-Key: a\r\nx-api-key:\r\nX-Api-Keys: b\r\n\r\n");
    CHECK(s.view().count("X-API-KEY") == 2);
    CHECK(s.view().count("host") == 1);
    CHECK(s.view().count("x-api") == 0);
  }

  TEST_CASE("hop-by-hop fields and those named in Connection are not forwarded") {
    const auto s = request(
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\nConnection: Upgrade\r\n"
        "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\n"
        "Upgrade: websocket\r\nX-Secret: 1\r\nx-secret: 2\r\nX-Keep: 3\r\nX-Keep: 4\r\n\r\n");
    NameSet skip;
    skip.add_hop_by_hop(s.view());
    std::string out;
    append_fields_except(s.view(), skip, out);
    CHECK(out == "Host: x\r\nX-Keep: 3\r\nX-Keep: 4\r\n");
    skip.add("host");
    out.clear();
    append_fields_except(s.view(), skip, out);
    CHECK(out == "X-Keep: 3\r\nX-Keep: 4\r\n");
  }

  TEST_CASE("a Connection option never removes framing or Host") {
    const auto s = request(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: content-length, host, X-A\r\n"
        "Content-Length: 5\r\nX-A: 1\r\n\r\n");
    NameSet skip;
    skip.add_hop_by_hop(s.view());
    std::string out;
    append_fields_except(s.view(), skip, out);
    CHECK(out == "Host: x\r\nContent-Length: 5\r\n");
  }

  TEST_CASE("iequals is ASCII case folding only") {
    CHECK(iequals("Content-Type", "content-type"));
    CHECK_FALSE(iequals("a[", "a{"));  // differ only in bit 0x20, but not letters
    CHECK_FALSE(iequals("ab", "abc"));
  }
}
