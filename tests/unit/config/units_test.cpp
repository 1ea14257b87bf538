#include "problemgate/config/load.hpp"

#include <doctest/doctest.h>

using namespace problemgate::config;
using namespace std::chrono_literals;

TEST_SUITE("config.units") {
  TEST_CASE("durations") {
    CHECK(parse_duration("250ms") == Duration{250});
    CHECK(parse_duration("10s") == Duration{10'000});
    CHECK(parse_duration("5m") == Duration{300'000});
    CHECK(parse_duration("1h") == Duration{3'600'000});
    CHECK(parse_duration("0s") == Duration{0});        // well-formed; "> 0" is the parser's call
    CHECK(parse_duration("0") == Duration{0});         // the one number that needs no unit
  }

  TEST_CASE("malformed durations") {
    // A bare number has no unit: 1500 was once read as milliseconds, a trap for `window: 60`.
    for (auto bad : {"", "s", "10", "1500", "-1s", "+1s", "1.5s", "10 s", "10sec", "10S", "1d", "ms10", " 1s",
                     "1s ", "99999999999999999999s", "9999999999999999h"}) {
      CAPTURE(bad);
      CHECK_FALSE(parse_duration(bad).has_value());
    }
  }

  TEST_CASE("sizes") {
    CHECK(parse_size("0") == 0u);
    CHECK(parse_size("512") == 512u);
    CHECK(parse_size("512B") == 512u);
    CHECK(parse_size("64KiB") == 64u * 1024);
    CHECK(parse_size("1MiB") == 1024u * 1024);
    CHECK(parse_size("2GiB") == 2ull * 1024 * 1024 * 1024);
    CHECK(parse_size("18446744073709551615") == 18446744073709551615ull);
  }

  TEST_CASE("malformed sizes") {
    for (auto bad : {"", "KiB", "64KB", "64kb", "64 KiB", "1.5MiB", "-1", "1MB", "1TiB", "18446744073709551616",
                     "17179869184GiB"}) {
      CAPTURE(bad);
      CHECK_FALSE(parse_size(bad).has_value());
    }
  }

  TEST_CASE("ip addresses") {
    auto v4 = parse_ip("10.1.2.3");
    REQUIRE(v4);
    CHECK((*v4)[10] == 0xff);
    CHECK((*v4)[11] == 0xff);
    CHECK((*v4)[12] == 10);
    CHECK((*v4)[15] == 3);
    auto v6 = parse_ip("::1");
    REQUIRE(v6);
    CHECK((*v6)[15] == 1);
    CHECK((*v6)[10] == 0);
    CHECK(parse_ip("::ffff:10.1.2.3") == v4);  // the mapped form is the same address
    CHECK_FALSE(parse_ip(""));
    CHECK_FALSE(parse_ip("10.1.2"));
    CHECK_FALSE(parse_ip("256.1.1.1"));
    CHECK_FALSE(parse_ip("fe80::1%eth0"));
    CHECK_FALSE(parse_ip("[::1]"));
    CHECK_FALSE(parse_ip("example.com"));
  }

  TEST_CASE("cidrs") {
    auto c = parse_cidr("10.0.0.0/8");
    REQUIRE(c);
    CHECK(c->prefix == 104);
    CHECK(c->text == "10.0.0.0/8");
    CHECK(parse_cidr("10.1.2.3")->prefix == 128);
    CHECK(parse_cidr("fd00::/8")->prefix == 8);
    CHECK(parse_cidr("::/0")->prefix == 0);
    CHECK(parse_cidr("10.9.9.9/8")->addr == parse_cidr("10.0.0.0/8")->addr);  // host bits cleared
    for (auto bad : {"10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "nope/8", "/8"}) {
      CAPTURE(bad);
      CHECK_FALSE(parse_cidr(bad));
    }
  }
}
