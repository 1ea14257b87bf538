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
    CHECK(parse_duration("0s") == Duration{0});  // well-formed; "> 0" is the parser's call
    CHECK(parse_duration("0") == Duration{0});   // the one number that needs no unit
  }

  TEST_CASE("malformed durations") {
    // A bare number has no unit: 1500 was once read as milliseconds, a trap for `window: 60`.
    for (auto bad : {"", "s", "10", "1500", "-1s", "+1s", "1.5s", "10 s", "10sec", "10S", "1d",
                     "ms10", " 1s", "1s ", "99999999999999999999s", "9999999999999999h"}) {
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
    for (auto bad : {"", "KiB", "64KB", "64kb", "64 KiB", "1.5MiB", "-1", "1MB", "1TiB",
                     "18446744073709551616", "17179869184GiB"}) {
      CAPTURE(bad);
      CHECK_FALSE(parse_size(bad).has_value());
    }
  }
}
