#include "proxy/client_address.hpp"

#include <doctest/doctest.h>

#include "problemgate/core/ip_address.hpp"

using problemgate::proxy::effective_client_ip;

namespace {
problemgate::core::Cidr cidr(std::string_view ip, int prefix_v4_or_v6, bool v4) {
  problemgate::core::Cidr c;
  auto bytes = problemgate::core::parse_ip(ip);
  REQUIRE(bytes);
  c.addr = *bytes;
  c.prefix = v4 ? 96 + prefix_v4_or_v6 : prefix_v4_or_v6;
  c.text = std::string(ip);
  return c;
}
}  // namespace

TEST_SUITE("proxy.client_address") {
  TEST_CASE("X-Forwarded-For is ignored without trusted proxies") {
    CHECK(effective_client_ip("10.0.0.1", "1.2.3.4", {}) == "10.0.0.1");
  }
  TEST_CASE("an untrusted peer's XFF is ignored") {
    std::vector<problemgate::core::Cidr> trusted{cidr("192.168.0.0", 16, true)};
    CHECK(effective_client_ip("10.0.0.1", "1.2.3.4", trusted) == "10.0.0.1");
  }
  TEST_CASE("a trusted peer: rightmost untrusted hop wins") {
    std::vector<problemgate::core::Cidr> trusted{cidr("127.0.0.0", 8, true)};
    CHECK(effective_client_ip("127.0.0.1", "6.6.6.6, 1.2.3.4", trusted) == "1.2.3.4");
    CHECK(effective_client_ip("127.0.0.1", "6.6.6.6, 1.2.3.4, 127.0.0.5", trusted) == "1.2.3.4");
    CHECK(effective_client_ip("127.0.0.1", "garbage", trusted) == "127.0.0.1");
  }
}
