#include "problemgate/config/config.hpp"

#include <doctest/doctest.h>

#include "problemgate/config/load.hpp"

using namespace problemgate::config;

namespace {
bool in(std::string_view cidr, std::string_view ip) {
  auto c = parse_cidr(cidr);
  auto a = parse_ip(ip);
  REQUIRE(c);
  REQUIRE(a);
  return c->contains(*a);
}
}  // namespace

TEST_SUITE("config.cidr") {
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

  TEST_CASE("worker threads") {
    Config c;
    CHECK(c.worker_threads() >= 1);
    c.threads = 3;
    CHECK(c.worker_threads() == 3);
  }

  TEST_CASE("endpoint to_string brackets IPv6") {
    CHECK(Endpoint{"127.0.0.1", 80}.to_string() == "127.0.0.1:80");
    CHECK(Endpoint{"::1", 8080}.to_string() == "[::1]:8080");
  }
}
