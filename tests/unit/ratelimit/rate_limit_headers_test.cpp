#include "problemgate/ratelimit/rate_limit_headers.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

using problemgate::config::RateLimitHeaders;
using problemgate::ratelimit::build_headers;
using problemgate::ratelimit::Decision;
using problemgate::ratelimit::HeaderField;
using problemgate::ratelimit::merge_missing;
using problemgate::ratelimit::parse_upstream_headers;
using problemgate::ratelimit::reset_to_epoch;
using problemgate::ratelimit::UpstreamLimit;
using problemgate::ratelimit::window_seconds;

namespace {

constexpr std::int64_t kNow = 1'706'900'000;

using Fmt = RateLimitHeaders::Format;
using Reset = RateLimitHeaders::Reset;

RateLimitHeaders fmt(Fmt f, Reset r = Reset::epoch) {
  RateLimitHeaders h;
  h.format = f;
  h.reset = r;
  return h;
}

Decision allowed(std::uint64_t limit, std::uint64_t remaining, std::int64_t reset_after) {
  return {true, limit, remaining, kNow + reset_after, reset_after, 0};
}

Decision denied(std::uint64_t limit, std::int64_t reset_after, std::int64_t retry_after) {
  return {false, limit, 0, kNow + reset_after, reset_after, retry_after};
}

using Fields = std::vector<std::pair<std::string, std::string>>;

Fields build(const Decision* g, const UpstreamLimit* u, RateLimitHeaders f,
             std::string_view name = "agents", std::int64_t window_s = 60) {
  std::vector<HeaderField> out;
  build_headers(g, u, name, window_s, f, kNow, out);
  Fields r;
  for (auto& h : out) r.emplace_back(std::string(h.name), h.value);
  return r;
}

}  // namespace

TEST_SUITE("ratelimit.headers") {
  TEST_CASE("gateway only: every format and reset combination") {
    const Decision d = allowed(100, 95, 3);
    SUBCASE("x_ratelimit, epoch (seed 001)") {
      CHECK(build(&d, nullptr, fmt(Fmt::x_ratelimit)) ==
            Fields{{"X-RateLimit-Limit", "100"},
                   {"X-RateLimit-Remaining", "95"},
                   {"X-RateLimit-Reset", "1706900003"}});
    }
    SUBCASE("x_ratelimit, delta") {
      CHECK(build(&d, nullptr, fmt(Fmt::x_ratelimit, Reset::delta)) ==
            Fields{{"X-RateLimit-Limit", "100"},
                   {"X-RateLimit-Remaining", "95"},
                   {"X-RateLimit-Reset", "3"}});
    }
    SUBCASE("ietf (reset option does not apply: t is always a delta)") {
      const Fields expected{{"RateLimit-Policy", "\"agents\";q=100;w=60"},
                            {"RateLimit", "\"agents\";r=95;t=3"}};
      CHECK(build(&d, nullptr, fmt(Fmt::ietf)) == expected);
      CHECK(build(&d, nullptr, fmt(Fmt::ietf, Reset::delta)) == expected);
    }
    SUBCASE("both") {
      CHECK(build(&d, nullptr, fmt(Fmt::both, Reset::delta)) ==
            Fields{{"X-RateLimit-Limit", "100"},
                   {"X-RateLimit-Remaining", "95"},
                   {"X-RateLimit-Reset", "3"},
                   {"RateLimit-Policy", "\"agents\";q=100;w=60"},
                   {"RateLimit", "\"agents\";r=95;t=3"}});
    }
  }

  TEST_CASE("gateway denial adds Retry-After") {
    const Decision d = denied(100, 60, 1);
    CHECK(build(&d, nullptr, fmt(Fmt::x_ratelimit)) == Fields{{"X-RateLimit-Limit", "100"},
                                                              {"X-RateLimit-Remaining", "0"},
                                                              {"X-RateLimit-Reset", "1706900060"},
                                                              {"Retry-After", "1"}});
  }

  TEST_CASE("nothing to say: no headers") {
    const UpstreamLimit empty;
    CHECK(build(nullptr, nullptr, fmt(Fmt::both)).empty());
    CHECK(build(nullptr, &empty, fmt(Fmt::both)).empty());
  }

  TEST_CASE("upstream only: carried as reported") {
    UpstreamLimit u;
    u.limit = 100;
    u.remaining = 0;
    u.reset_epoch_s = kNow + 60;
    u.retry_after_s = 60;
    SUBCASE("x_ratelimit epoch") {
      CHECK(build(nullptr, &u, fmt(Fmt::x_ratelimit)) == Fields{{"X-RateLimit-Limit", "100"},
                                                                {"X-RateLimit-Remaining", "0"},
                                                                {"X-RateLimit-Reset", "1706900060"},
                                                                {"Retry-After", "60"}});
    }
    SUBCASE("delta") {
      CHECK(build(nullptr, &u, fmt(Fmt::x_ratelimit, Reset::delta))[2] ==
            std::pair<std::string, std::string>{"X-RateLimit-Reset", "60"});
    }
    SUBCASE("a reset in the past is 0 seconds away") {
      u.reset_epoch_s = kNow - 5;
      CHECK(build(nullptr, &u, fmt(Fmt::x_ratelimit, Reset::delta))[2].second == "0");
    }
    SUBCASE("ietf names it \"upstream\" and has no window") {
      CHECK(build(nullptr, &u, fmt(Fmt::ietf)) == Fields{{"RateLimit-Policy", "\"upstream\";q=100"},
                                                         {"RateLimit", "\"upstream\";r=0;t=60"},
                                                         {"Retry-After", "60"}});
    }
    SUBCASE("partial: only what was reported") {
      UpstreamLimit p;
      p.remaining = 7;
      CHECK(build(nullptr, &p, fmt(Fmt::both)) ==
            Fields{{"X-RateLimit-Remaining", "7"}, {"RateLimit", "\"upstream\";r=7"}});
      UpstreamLimit r;
      r.retry_after_s = 30;
      CHECK(build(nullptr, &r, fmt(Fmt::both)) == Fields{{"Retry-After", "30"}});
    }
  }

  TEST_CASE("both sources: the stricter is shown") {
    const Decision g = allowed(100, 50, 30);
    UpstreamLimit u;
    u.limit = 1000;
    u.reset_epoch_s = kNow + 10;

    SUBCASE("upstream has fewer left") {
      u.remaining = 3;
      CHECK(build(&g, &u, fmt(Fmt::x_ratelimit)) == Fields{{"X-RateLimit-Limit", "1000"},
                                                           {"X-RateLimit-Remaining", "3"},
                                                           {"X-RateLimit-Reset", "1706900010"}});
    }
    SUBCASE("gateway has fewer left") {
      u.remaining = 900;
      CHECK(build(&g, &u, fmt(Fmt::x_ratelimit)) == Fields{{"X-RateLimit-Limit", "100"},
                                                           {"X-RateLimit-Remaining", "50"},
                                                           {"X-RateLimit-Reset", "1706900030"}});
    }
    SUBCASE("tie: the later reset wins") {
      u.remaining = 50;
      CHECK(build(&g, &u, fmt(Fmt::x_ratelimit))[2].second == "1706900030");  // gateway's
      u.reset_epoch_s = kNow + 45;
      CHECK(build(&g, &u, fmt(Fmt::x_ratelimit))[2].second == "1706900045");  // upstream's
    }
    SUBCASE("tie on both: the upstream's") {
      u.remaining = 50;
      u.reset_epoch_s = kNow + 30;
      CHECK(build(&g, &u, fmt(Fmt::x_ratelimit))[0].second == "1000");
    }
    SUBCASE("upstream stricter but partial: gateway fills the gaps") {
      UpstreamLimit p;
      p.remaining = 2;
      CHECK(build(&g, &p, fmt(Fmt::x_ratelimit, Reset::delta)) ==
            Fields{{"X-RateLimit-Limit", "100"},
                   {"X-RateLimit-Remaining", "2"},
                   {"X-RateLimit-Reset", "30"}});
    }
    SUBCASE("upstream without remaining cannot be compared: gateway's triple") {
      CHECK(build(&g, &u, fmt(Fmt::x_ratelimit))[1].second == "50");
    }
    SUBCASE("ietf lists both policies, RateLimit shows the stricter") {
      u.remaining = 3;
      CHECK(build(&g, &u, fmt(Fmt::ietf)) ==
            Fields{{"RateLimit-Policy", "\"agents\";q=100;w=60, \"upstream\";q=1000"},
                   {"RateLimit", "\"upstream\";r=3;t=10"}});
    }
    SUBCASE("Retry-After: the larger of a gateway denial and the upstream's") {
      const Decision d = denied(100, 60, 5);
      u.remaining = 0;
      u.retry_after_s = 20;
      CHECK(build(&d, &u, fmt(Fmt::x_ratelimit)).back() ==
            std::pair<std::string, std::string>{"Retry-After", "20"});
      u.retry_after_s = 2;
      CHECK(build(&d, &u, fmt(Fmt::x_ratelimit)).back().second == "5");
      u.retry_after_s.reset();
      CHECK(build(&d, &u, fmt(Fmt::x_ratelimit)).back().second == "5");
    }
    SUBCASE("an allowed gateway still carries the upstream's Retry-After") {
      u.retry_after_s = 9;
      CHECK(build(&g, &u, fmt(Fmt::x_ratelimit)).back().second == "9");
    }
  }

  TEST_CASE("policy names are emitted as valid sf-strings") {
    const Decision d = allowed(10, 9, 6);
    CHECK(build(&d, nullptr, fmt(Fmt::ietf), "a\"b\\c\nd", 1)[0].second ==
          "\"a\\\"b\\\\cd\";q=10;w=1");
  }

  TEST_CASE("window_seconds rounds up, at least 1") {
    problemgate::config::RateLimitPolicy p;
    p.window = std::chrono::milliseconds(60'000);
    CHECK(window_seconds(p) == 60);
    p.window = std::chrono::milliseconds(1'500);
    CHECK(window_seconds(p) == 2);
    p.window = std::chrono::milliseconds(1);
    CHECK(window_seconds(p) == 1);
  }
}

TEST_SUITE("ratelimit.parse_upstream") {
  TEST_CASE("well-formed values") {
    const UpstreamLimit u = parse_upstream_headers("100", "95", "1706900060", "60", kNow);
    CHECK(u.limit == std::optional<std::uint64_t>(100));
    CHECK(u.remaining == std::optional<std::uint64_t>(95));
    CHECK(u.reset_epoch_s == std::optional<std::int64_t>(1'706'900'060));
    CHECK(u.retry_after_s == std::optional<std::int64_t>(60));
    CHECK(u.any());
  }

  TEST_CASE("absent values stay absent") {
    const UpstreamLimit u = parse_upstream_headers("", "", "", "", kNow);
    CHECK_FALSE(u.any());
  }

  TEST_CASE("surrounding whitespace is ignored") {
    const UpstreamLimit u = parse_upstream_headers(" 100\t", "\t5 ", "  30 ", " 7", kNow);
    CHECK(u.limit == std::optional<std::uint64_t>(100));
    CHECK(u.remaining == std::optional<std::uint64_t>(5));
    CHECK(u.reset_epoch_s == std::optional<std::int64_t>(kNow + 30));
    CHECK(u.retry_after_s == std::optional<std::int64_t>(7));
  }

  TEST_CASE("reset: delta, epoch seconds, epoch milliseconds, fractions") {
    auto reset = [](std::string_view v) {
      return parse_upstream_headers("", "", v, "", kNow).reset_epoch_s;
    };
    CHECK(reset("17") == std::optional<std::int64_t>(kNow + 17));
    CHECK(reset("0") == std::optional<std::int64_t>(kNow));
    CHECK(reset("1000000000") == std::optional<std::int64_t>(kNow + 1'000'000'000));  // not > 1e9
    CHECK(reset("1706900060") == std::optional<std::int64_t>(1'706'900'060));
    CHECK(reset("1706900060123") == std::optional<std::int64_t>(1'706'900'061));  // ms, ceil
    CHECK(reset("1706900060.25") == std::optional<std::int64_t>(1'706'900'061));  // Discord
    CHECK(reset("2.5") == std::optional<std::int64_t>(kNow + 3));
    CHECK(reset_to_epoch(1'706'900'060, kNow) == 1'706'900'060);
  }

  TEST_CASE("Retry-After: delta-seconds or IMF-fixdate") {
    auto retry = [](std::string_view v) {
      return parse_upstream_headers("", "", "", v, kNow).retry_after_s;
    };
    CHECK(retry("120") == std::optional<std::int64_t>(120));
    CHECK(retry("0") == std::optional<std::int64_t>(0));
    // kNow = 2024-02-02T18:53:20Z
    CHECK(retry("Fri, 02 Feb 2024 18:54:20 GMT") == std::optional<std::int64_t>(60));
    CHECK(retry("Sun, 06 Nov 1994 08:49:37 GMT") == std::optional<std::int64_t>(0));  // past
    CHECK_FALSE(retry("Sunday, 06-Nov-94 08:49:37 GMT").has_value());  // obsolete RFC 850
    CHECK_FALSE(retry("Fri, 30 Feb 2024 18:54:20 GMT").has_value());
    CHECK_FALSE(retry("Fri, 02 Foo 2024 18:54:20 GMT").has_value());
    CHECK_FALSE(retry("Fri, 02 Feb 2024 25:54:20 GMT").has_value());
    CHECK_FALSE(retry("Fri, 02 Feb 2024 18:54:20 UTC").has_value());
    CHECK_FALSE(retry("-5").has_value());
  }

  TEST_CASE("garbage gives nullopt for that member only") {
    const char* const kGarbage[] = {
        "abc",      "12abc", "1 2", "0x10", "+5", ".", "5.", "1e3", "99999999999999999999999",
        "\xff\xfe", "--1"};
    for (const char* g : kGarbage) {
      CAPTURE(g);
      const UpstreamLimit u = parse_upstream_headers(g, g, g, g, kNow);
      CHECK_FALSE(u.limit.has_value());
      CHECK_FALSE(u.remaining.has_value());
      CHECK_FALSE(u.reset_epoch_s.has_value());
      CHECK_FALSE(u.retry_after_s.has_value());
    }
    const UpstreamLimit mixed = parse_upstream_headers("oops", "4", "later", "soon", kNow);
    CHECK_FALSE(mixed.limit.has_value());
    CHECK(mixed.remaining == std::optional<std::uint64_t>(4));
    CHECK_FALSE(mixed.reset_epoch_s.has_value());
  }

  TEST_CASE("negative and fractional counts") {
    CHECK(parse_upstream_headers("", "-3", "", "", kNow).remaining ==
          std::optional<std::uint64_t>(0));  // never negative
    CHECK_FALSE(parse_upstream_headers("-100", "", "", "", kNow).limit.has_value());
    CHECK_FALSE(parse_upstream_headers("10.5", "", "", "", kNow).limit.has_value());
    CHECK_FALSE(parse_upstream_headers("", "", "-20", "", kNow).reset_epoch_s.has_value());
  }

  TEST_CASE("huge values saturate instead of overflowing") {
    const UpstreamLimit u = parse_upstream_headers(
        "18446744073709551615", "", "18446744073709551615", "18446744073709551615", kNow);
    CHECK(u.limit == std::optional<std::uint64_t>(18'446'744'073'709'551'615ull));
    REQUIRE(u.reset_epoch_s.has_value());
    CHECK(*u.reset_epoch_s > 0);
    REQUIRE(u.retry_after_s.has_value());
    CHECK(*u.retry_after_s > 0);
  }

  TEST_CASE("merge_missing: headers first, body members fill gaps") {
    UpstreamLimit headers = parse_upstream_headers("", "3", "", "", kNow);
    const UpstreamLimit body = parse_upstream_headers("100", "0", "1706900060", "60", kNow);
    merge_missing(headers, body);
    CHECK(headers.limit == std::optional<std::uint64_t>(100));
    CHECK(headers.remaining == std::optional<std::uint64_t>(3));
    CHECK(headers.reset_epoch_s == std::optional<std::int64_t>(1'706'900'060));
    CHECK(headers.retry_after_s == std::optional<std::int64_t>(60));
  }
}
