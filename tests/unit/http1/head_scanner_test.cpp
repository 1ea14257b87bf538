#include "problemgate/http1/head_scanner.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace problemgate::http1;

namespace {

HeadVerdict req(std::string_view raw, HeadLimits limits = {}) {
  return scan_request_head(raw, limits).verdict;
}
HeadVerdict res(std::string_view raw) { return scan_response_head(raw, HeadLimits{}).verdict; }

}  // namespace

TEST_SUITE("http1.head_scanner") {
  TEST_CASE("a plain GET is ok and its length is the head") {
    std::string_view raw = "GET /x HTTP/1.1\r\nHost: a\r\n\r\nNEXT";
    auto s = scan_request_head(raw, {});
    CHECK(s.verdict == HeadVerdict::ok);
    CHECK(s.head_bytes == raw.size() - 4);
    CHECK_FALSE(s.chunked);
    CHECK_FALSE(s.has_content_length);
  }
  TEST_CASE("incomplete heads ask for more") {
    CHECK(req("GET / HTTP/1.1\r\nHost: a\r\n") == HeadVerdict::incomplete);
    CHECK(req("GE") == HeadVerdict::incomplete);
  }
  TEST_CASE("framing facts") {
    auto s = scan_request_head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", {});
    CHECK(s.verdict == HeadVerdict::ok);
    CHECK(s.has_content_length);
    CHECK(s.content_length == 12);
    s = scan_request_head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", {});
    CHECK(s.verdict == HeadVerdict::ok);
    CHECK(s.chunked);
  }
  TEST_CASE("smuggling shapes are rejected (README framing rules)") {
    SUBCASE("CL + TE in both orders") {
      CHECK(
          req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          HeadVerdict::malformed);
      CHECK(
          req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n") ==
          HeadVerdict::malformed);
    }
    SUBCASE("TE not exactly chunked") {
      CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n") ==
            HeadVerdict::malformed);
      CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n") ==
            HeadVerdict::not_implemented);
      CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") ==
            HeadVerdict::malformed);
      CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n") ==
            HeadVerdict::malformed);
      CHECK(
          req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          HeadVerdict::malformed);
      CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n") ==
            HeadVerdict::malformed);
      CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked \r\n\r\n") ==
            HeadVerdict::ok);
    }
    SUBCASE("chunked on HTTP/1.0") {
      CHECK(req("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == HeadVerdict::malformed);
    }
    SUBCASE("Content-Length duplicates and junk") {
      CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") ==
            HeadVerdict::malformed);
      CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n") ==
            HeadVerdict::malformed);
      CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n") ==
            HeadVerdict::malformed);
      CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n") ==
            HeadVerdict::malformed);
      CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n") ==
            HeadVerdict::malformed);
      CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n") ==
            HeadVerdict::malformed);
      CHECK(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n") ==
            HeadVerdict::malformed);
    }
    SUBCASE("obs-fold, bare LF, bare CR, NUL, space before colon") {
      CHECK(req("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n") == HeadVerdict::malformed);
      CHECK(req("GET / HTTP/1.1\nHost: a\r\n\r\n") == HeadVerdict::malformed);
      CHECK(req("GET / HTTP/1.1\r\nHost: a\n\n") == HeadVerdict::malformed);
      CHECK(req("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n") == HeadVerdict::malformed);
      CHECK(req(std::string_view("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29)) ==
            HeadVerdict::malformed);
      CHECK(req("GET / HTTP/1.1\r\nHost : a\r\n\r\n") == HeadVerdict::malformed);
      CHECK(req("GET / HTTP/1.1\r\nHo st: a\r\n\r\n") == HeadVerdict::malformed);
      CHECK(req("GET / HTTP/1.1\r\n: a\r\n\r\n") == HeadVerdict::malformed);
    }
    SUBCASE("Host rules") {
      CHECK(req("GET / HTTP/1.1\r\n\r\n") == HeadVerdict::malformed);
      CHECK(req("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == HeadVerdict::malformed);
      CHECK(req("GET / HTTP/1.0\r\n\r\n") == HeadVerdict::ok);
    }
    SUBCASE("request line syntax") {
      CHECK(req("GET  / HTTP/1.1\r\nHost: a\r\n\r\n") == HeadVerdict::malformed);
      CHECK(req("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == HeadVerdict::malformed);
      CHECK(req("GET / HTTP/1.1 \r\nHost: a\r\n\r\n") == HeadVerdict::malformed);
      CHECK(req("G(T / HTTP/1.1\r\nHost: a\r\n\r\n") == HeadVerdict::malformed);
      CHECK(req("helloGET / HTTP/1.1\r\nHost: a\r\n\r\n") == HeadVerdict::malformed);
      CHECK(req("get / HTTP/1.1\r\nHost: a\r\n\r\n") == HeadVerdict::malformed);
      CHECK(req("M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n") == HeadVerdict::ok);
      CHECK(req("PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n") == HeadVerdict::ok);
      CHECK(req("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == HeadVerdict::malformed);
    }
  }
  TEST_CASE("limits: request line 414, header bytes and field count 431") {
    HeadLimits limits{64, 256, 4};
    CHECK(req("GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", limits) ==
          HeadVerdict::uri_too_long);
    CHECK(req("GET /" + std::string(100, 'a'), limits) == HeadVerdict::uri_too_long);
    CHECK(req("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(300, 'a') + "\r\n\r\n", limits) ==
          HeadVerdict::too_large);
    CHECK(req("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\n\r\n", limits) ==
          HeadVerdict::ok);
    CHECK(req("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n", limits) ==
          HeadVerdict::too_large);
    // A head that never ends is cut off once it is over the limits.
    CHECK(req("GET / HTTP/1.1\r\n" + std::string(400, 'a'), limits) == HeadVerdict::too_large);
  }
  TEST_CASE("default limits: 8 KiB request line, 100 fields") {
    std::string line_ok = "GET /" + std::string(8 * 1024 - 14, 'a') + " HTTP/1.1";
    CHECK(line_ok.size() == 8 * 1024);
    CHECK(req(line_ok + "\r\nHost: a\r\n\r\n") == HeadVerdict::ok);
    CHECK(req("GET /a" + line_ok.substr(5) + "\r\nHost: a\r\n\r\n") == HeadVerdict::uri_too_long);
    std::string fields;
    for (int i = 0; i < 99; ++i) fields += "X" + std::to_string(i) + ": v\r\n";
    CHECK(req("GET / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n") == HeadVerdict::ok);
    CHECK(req("GET / HTTP/1.1\r\nHost: a\r\n" + fields + "Y: 1\r\n\r\n") == HeadVerdict::too_large);
  }
  TEST_CASE("response heads") {
    CHECK(res("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n") == HeadVerdict::ok);
    CHECK(res("HTTP/1.1 204 \r\n\r\n") == HeadVerdict::ok);
    // The SP after the code is required: Beast rejects "HTTP/1.1 201" (found by the fuzzer:
    // the scanner said ok, then Beast said "bad status").
    CHECK(res("HTTP/1.1 201\r\n\r\n") == HeadVerdict::malformed);
    CHECK(res("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          HeadVerdict::malformed);
    CHECK(res("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n") ==
          HeadVerdict::malformed);
    CHECK(res("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n") == HeadVerdict::malformed);
    CHECK(res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n") ==
          HeadVerdict::malformed);
    CHECK(res("HTTP/1.1 20 OK\r\n\r\n") == HeadVerdict::malformed);
    CHECK(res("HTTP/1.1 200OK\r\n\r\n") == HeadVerdict::malformed);
    CHECK(res("ICY 200 OK\r\n\r\n") == HeadVerdict::malformed);
    // unknown codings from an upstream are a bad response, not a 501
    CHECK(res("HTTP/1.1 200 OK\r\nTransfer-Encoding: br\r\n\r\n") == HeadVerdict::malformed);
  }
  TEST_CASE("battery findings: Connection token lists, field length cap") {
    // Fuzzer: Beast rejects a Connection/Proxy-Connection value that is not a token list.
    CHECK(req("GET / HTTP/1.1\r\nHost: x\r\nConnection: 0<<<<close\r\n\r\n") ==
          HeadVerdict::malformed);
    CHECK(req("GET / HTTP/1.1\r\nHost: x\r\nProxy-Connection: a b\r\n\r\n") ==
          HeadVerdict::malformed);
    CHECK(req("GET / HTTP/1.1\r\nHost: x\r\nConnection: close, , X-Y\r\n\r\n") == HeadVerdict::ok);
    // H5: Beast throws on a field value of 64 KiB (16-bit lengths): 431 instead.
    HeadLimits big{8 * 1024, 256 * 1024, 100};
    const std::string ok_line = "X: " + std::string(65535 - 2 - 64 - 3, 'v');
    CHECK(req("GET / HTTP/1.1\r\nHost: x\r\n" + ok_line + "\r\n\r\n", big) == HeadVerdict::ok);
    CHECK(req("GET / HTTP/1.1\r\nHost: x\r\n" + ok_line + "v\r\n\r\n", big) ==
          HeadVerdict::too_large);
  }
}

TEST_SUITE("http1.head_scanner.values") {
  TEST_CASE("every byte position of a long value is checked (vector and tail paths)") {
    // Values longer than 16 bytes go through the 16-byte-step path; a bad byte at any position,
    // in the first block, a later block or the tail, must still be found.
    const std::string good(70, 'v');
    for (std::size_t at = 0; at < good.size(); ++at) {
      for (char bad : {'\0', '\x01', '\x0b', '\x1f', '\x7f', '\r', '\n'}) {
        std::string value = good;
        value[at] = bad;
        const std::string raw = "GET / HTTP/1.1\r\nHost: a\r\nX-V: " + value + "\r\n\r\n";
        CHECK_MESSAGE(problemgate::http1::scan_request_head(raw, {}).verdict ==
                          problemgate::http1::HeadVerdict::malformed,
                      "byte " << int(static_cast<unsigned char>(bad)) << " at " << at);
      }
      std::string tabbed = good;
      tabbed[at] = '\t';
      std::string high = good;
      high[at] = '\xff';  // obs-text is allowed
      for (const auto& v : {tabbed, high}) {
        const std::string raw = "GET / HTTP/1.1\r\nHost: a\r\nX-V: " + v + "\r\n\r\n";
        CHECK(problemgate::http1::scan_request_head(raw, {}).verdict ==
              problemgate::http1::HeadVerdict::ok);
      }
    }
  }
  TEST_CASE("only 100-599 are status codes") {
    for (const char* code : {"000", "099", "600", "999"})
      CHECK_MESSAGE(res(std::string("HTTP/1.1 ") + code + " X\r\nContent-Length: 0\r\n\r\n") ==
                        HeadVerdict::malformed,
                    code);
    for (const char* code : {"100", "200", "599"})
      CHECK_MESSAGE(res(std::string("HTTP/1.1 ") + code + " X\r\nContent-Length: 0\r\n\r\n") ==
                        HeadVerdict::ok,
                    code);
  }

  TEST_CASE("a request target has no fragment") {
    CHECK(req("GET /api#frag HTTP/1.1\r\nHost: a\r\n\r\n") == HeadVerdict::malformed);
    CHECK(req("GET /api?q#f HTTP/1.1\r\nHost: a\r\n\r\n") == HeadVerdict::malformed);
    CHECK(req("GET /api?q=%23 HTTP/1.1\r\nHost: a\r\n\r\n") == HeadVerdict::ok);
  }

  TEST_CASE("Host is uri-host [:port]") {
    CHECK(req("GET / HTTP/1.1\r\nHost: a b@c/d\r\n\r\n") == HeadVerdict::malformed);
    CHECK(req("GET / HTTP/1.1\r\nHost: user@h\r\n\r\n") == HeadVerdict::malformed);
    CHECK(req("GET / HTTP/1.1\r\nHost: h:x\r\n\r\n") == HeadVerdict::malformed);
    CHECK(req("GET / HTTP/1.0\r\nHost: h/x\r\n\r\n") == HeadVerdict::malformed);
    CHECK(req("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n") == HeadVerdict::ok);
    CHECK(req("GET / HTTP/1.1\r\nHost: \r\n\r\n") ==
          HeadVerdict::ok);  // RFC 9112 3.2: may be empty
  }
}
