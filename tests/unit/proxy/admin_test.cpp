#include "proxy/admin.hpp"

#include <doctest/doctest.h>

using problemgate::proxy::BearerCheck;
using problemgate::proxy::check_bearer;

TEST_SUITE("proxy.admin") {
  TEST_CASE("check_bearer: Authorization: Bearer <token>") {
    constexpr std::string_view token = "0123456789abcdef-token";
    CHECK(check_bearer("Bearer 0123456789abcdef-token", token) == BearerCheck::ok);
    CHECK(check_bearer("bearer 0123456789abcdef-token", token) ==
          BearerCheck::ok);  // scheme: any case
    CHECK(check_bearer("BEARER   0123456789abcdef-token  ", token) == BearerCheck::ok);
    CHECK(check_bearer(" Bearer\t0123456789abcdef-token", token) == BearerCheck::ok);

    CHECK(check_bearer("", token) == BearerCheck::missing);
    CHECK(check_bearer("Bearer", token) == BearerCheck::missing);
    CHECK(check_bearer("Bearer ", token) == BearerCheck::missing);
    CHECK(check_bearer("Basic 0123456789abcdef-token", token) == BearerCheck::missing);
    CHECK(check_bearer("Bearer0123456789abcdef-token", token) == BearerCheck::missing);
    CHECK(check_bearer("0123456789abcdef-token", token) == BearerCheck::missing);

    CHECK(check_bearer("Bearer 0123456789abcdef-toke", token) == BearerCheck::wrong);    // a prefix
    CHECK(check_bearer("Bearer 0123456789abcdef-tokenX", token) == BearerCheck::wrong);  // longer
    CHECK(check_bearer("Bearer 0123456789abcdef-tokeN", token) == BearerCheck::wrong);  // last byte
    CHECK(check_bearer("Bearer x", token) == BearerCheck::wrong);
    CHECK(check_bearer("Bearer 0123456789abcdef-token 0123456789abcdef-token", token) ==
          BearerCheck::wrong);
    CHECK(check_bearer(std::string_view("Bearer 0123456789abcdef-token\0", 30), token) ==
          BearerCheck::wrong);
  }

  TEST_CASE("check_bearer: no token configured accepts anything") {
    CHECK(check_bearer("", "") == BearerCheck::ok);
    CHECK(check_bearer("Bearer whatever", "") == BearerCheck::ok);
  }
}
