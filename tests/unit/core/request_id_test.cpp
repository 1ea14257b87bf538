#include "problemgate/core/request_id.hpp"

#include <doctest/doctest.h>

#include <set>

using namespace problemgate::core;

TEST_SUITE("core.request_id") {
  TEST_CASE("valid ids are 1-128 chars of [A-Za-z0-9._:-]") {
    CHECK(is_valid_request_id("a"));
    CHECK(is_valid_request_id("req_01HXYZ.abc:def-9"));
    CHECK(is_valid_request_id(std::string(128, 'x')));
    CHECK_FALSE(is_valid_request_id(""));
    CHECK_FALSE(is_valid_request_id(std::string(129, 'x')));
    CHECK_FALSE(is_valid_request_id("has space"));
    CHECK_FALSE(is_valid_request_id("quote\""));
    CHECK_FALSE(is_valid_request_id("new\nline"));
    CHECK_FALSE(is_valid_request_id(std::string_view("nul\0x", 5)));
  }

  TEST_CASE("generated ids are req_ + 26 Crockford base32 chars, sortable by time") {
    FakeClock clock;
    RequestIdGenerator gen(clock);
    std::string a = gen.next();
    clock.advance_ms(1);
    std::string b = gen.next();
    CHECK(a.size() == 30);
    CHECK(a.rfind("req_", 0) == 0);
    CHECK(is_valid_request_id(a));
    for (char c : a.substr(4)) {
      CHECK(std::string_view("0123456789ABCDEFGHJKMNPQRSTVWXYZ").find(c) != std::string_view::npos);
    }
    CHECK(a < b);
    // The first 10 chars are the 48-bit timestamp.
    CHECK(a.substr(4, 10) != b.substr(4, 10));
  }

  TEST_CASE("generated ids do not repeat") {
    FakeClock clock;
    RequestIdGenerator gen(clock);
    std::set<std::string> seen;
    for (int i = 0; i < 10000; ++i) seen.insert(gen.next());
    CHECK(seen.size() == 10000);
  }

  TEST_CASE("timestamp part encodes the clock's milliseconds") {
    FakeClock clock(0);
    RequestIdGenerator gen(clock);
    CHECK(gen.next().substr(4, 10) == "0000000000");
  }
}
