#include "problemgate/core/ip_address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace problemgate::core {

bool Cidr::contains(const IpBytes& a) const noexcept {
  const int full = prefix / 8;
  for (int i = 0; i < full; ++i) {
    if (a[static_cast<std::size_t>(i)] != addr[static_cast<std::size_t>(i)]) return false;
  }
  const int rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  const auto i = static_cast<std::size_t>(full);
  return (a[i] & mask) == (addr[i] & mask);
}

std::optional<IpBytes> parse_ip(std::string_view text) {
  // inet_pton needs a NUL-terminated string; the longest IPv6 text form is 45 characters.
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[64];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpBytes out{};
  if (inet_pton(AF_INET, buf, out.data() + 12) == 1) {
    out[10] = 0xff;
    out[11] = 0xff;
    return out;
  }
  if (inet_pton(AF_INET6, buf, out.data()) == 1) return out;
  return std::nullopt;
}

std::optional<Cidr> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  const std::string_view addr_text = text.substr(0, slash);
  auto addr = parse_ip(addr_text);
  if (!addr) return std::nullopt;
  const bool v4 = addr_text.find(':') == std::string_view::npos;
  const int max_bits = v4 ? 32 : 128;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    const std::string_view len = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(len.data(), len.data() + len.size(), bits);
    if (ec != std::errc{} || ptr != len.data() + len.size() || len.empty() || bits < 0 ||
        bits > max_bits) {
      return std::nullopt;
    }
  }
  Cidr c;
  c.prefix = v4 ? 96 + bits : bits;
  c.text = std::string(text);
  // Host bits are cleared rather than rejected: "10.1.2.3/8" plainly means 10.0.0.0/8.
  for (int i = 0; i < 16; ++i) {
    const int keep = std::clamp(c.prefix - i * 8, 0, 8);
    const auto mask = static_cast<std::uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
    c.addr[static_cast<std::size_t>(i)] =
        static_cast<std::uint8_t>((*addr)[static_cast<std::size_t>(i)] & mask);
  }
  return c;
}

}  // namespace problemgate::core
