#include "problemgate/core/ip_address.hpp"

#include <doctest/doctest.h>

using namespace problemgate::core;

namespace {
bool in(std::string_view cidr, std::string_view ip) {
  auto c = parse_cidr(cidr);
  auto a = parse_ip(ip);
  REQUIRE(c);
  REQUIRE(a);
  return c->contains(*a);
}
}  // namespace

TEST_SUITE("core.ip_address") {
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
    for (auto bad :
         {"10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "nope/8", "/8"}) {
      CAPTURE(bad);
      CHECK_FALSE(parse_cidr(bad));
    }
  }

  TEST_CASE("v4 contains") {
    CHECK(in("10.0.0.0/8", "10.255.1.2"));
    CHECK_FALSE(in("10.0.0.0/8", "11.0.0.1"));
    CHECK(in("192.168.1.0/24", "192.168.1.77"));
    CHECK_FALSE(in("192.168.1.0/24", "192.168.2.1"));
    CHECK(in("172.16.0.0/12", "172.31.255.255"));
    CHECK_FALSE(in("172.16.0.0/12", "172.32.0.0"));
    CHECK(in("203.0.113.7", "203.0.113.7"));
    CHECK_FALSE(in("203.0.113.7", "203.0.113.8"));
    CHECK(in("0.0.0.0/0", "8.8.8.8"));
    CHECK_FALSE(in("0.0.0.0/0", "2001:db8::1"));  // all of IPv4 is not all of IPv6
  }

  TEST_CASE("v6 contains") {
    CHECK(in("fd00::/8", "fdab::1"));
    CHECK_FALSE(in("fd00::/8", "fe80::1"));
    CHECK(in("2001:db8::/32", "2001:db8:ffff::1"));
    CHECK_FALSE(in("2001:db8::/33", "2001:db8:8000::1"));
    CHECK(in("::1", "::1"));
    CHECK(in("::/0", "10.0.0.1"));
    CHECK(in("::ffff:10.0.0.0/104", "10.2.3.4"));  // mapped notation for a v4 network
  }
}
