#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace problemgate::core {

/// An address in 16-byte form: IPv6 as is, IPv4 as the IPv4-mapped IPv6 address ::ffff:a.b.c.d,
/// so one comparison covers both families.
using IpBytes = std::array<std::uint8_t, 16>;

/// An IPv4 or IPv6 network over the 16-byte form (an IPv4 /8 is a /104 here).
struct Cidr {
  IpBytes addr{};
  int prefix = 0;    ///< over the 128-bit form
  std::string text;  ///< as written, for messages and /config
  bool contains(const IpBytes& a) const noexcept;
};

/// Parses an IPv4 or IPv6 literal (no brackets, no zone id); nullopt when malformed. On every
/// request (trusted-proxy checks), so it does not allocate.
std::optional<IpBytes> parse_ip(std::string_view text);
/// Parses "10.0.0.0/8", "fd00::/8" or a bare address (a /32 or /128); host bits are cleared.
std::optional<Cidr> parse_cidr(std::string_view text);

}  // namespace problemgate::core
