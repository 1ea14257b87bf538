#include "problemgate/core/trace_context.hpp"

#include <doctest/doctest.h>

#include "problemgate/core/clock.hpp"
#include "problemgate/core/request_id.hpp"

using problemgate::core::parse_traceparent;
using problemgate::core::TraceParent;

TEST_SUITE("core.trace_context") {
  TEST_CASE("a valid version-00 traceparent is parsed") {
    TraceParent tp;
    REQUIRE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tp));
    CHECK(tp.trace_id_view() == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(tp.parent_id_view() == "00f067aa0ba902b7");
    CHECK(tp.flags == 1);
    REQUIRE(parse_traceparent(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00\t", tp));
    CHECK(tp.flags == 0);
  }

  TEST_CASE("invalid traceparents are refused") {
    TraceParent tp;
    for (
        const char* v : {
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",           // no flags
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",        // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",        // zero parent id
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",        // uppercase
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // version ff
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // not hex
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // 00 has no more fields
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // separator
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",        // misplaced dash
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",        // flags not hex
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // future: no '-' after
        }) {
      CAPTURE(v);
      CHECK_FALSE(parse_traceparent(v, tp));
    }
  }

  TEST_CASE("a future version is read by its version-00 prefix") {
    TraceParent tp;
    CHECK(
        parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever", tp));
    CHECK(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tp));
  }

  TEST_CASE("format_traceparent round-trips") {
    std::string out;
    problemgate::core::format_traceparent("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1,
                                          out);
    CHECK(out == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    TraceParent tp;
    CHECK(parse_traceparent(out, tp));
  }

  TEST_CASE("generated trace and span ids are valid, distinct lowercase hex") {
    problemgate::core::SystemClock clock;
    problemgate::core::RequestIdGenerator gen(clock);
    char t1[32], s1[16], t2[32], s2[16];
    gen.next_trace(t1, s1);
    gen.next_trace(t2, s2);
    std::string tp;
    problemgate::core::format_traceparent({t1, 32}, {s1, 16}, 1, tp);
    TraceParent parsed;
    CHECK(parse_traceparent(tp, parsed));
    CHECK(std::string_view(t1, 32) != std::string_view(t2, 32));
    CHECK(std::string_view(s1, 16) != std::string_view(s2, 16));
    char known[32];
    problemgate::core::random_hex_id(0x0123456789abcdefull, 0xfedcba9876543210ull, known, 16);
    CHECK(std::string_view(known, 32) == "0123456789abcdeffedcba9876543210");
    problemgate::core::random_hex_id(0xa0b1c2d3e4f5a6b7ull, 0, known, 8);
    CHECK(std::string_view(known, 16) == "a0b1c2d3e4f5a6b7");
    char zero[16];
    problemgate::core::random_hex_id(0, 0, zero, 8);
    CHECK(std::string_view(zero, 16) == "0000000000000001");
  }
}
