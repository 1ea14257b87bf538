#include "proxy/client_address.hpp"

#include <boost/asio/ip/address.hpp>

namespace problemgate::proxy {

bool parse_ip(std::string_view text, std::array<std::uint8_t, 16>& out) noexcept {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(std::string(text), ec);
  if (ec) return false;
  if (addr.is_v4()) {
    auto v6 = boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, addr.to_v4());
    out = v6.to_bytes();
  } else {
    out = addr.to_v6().to_bytes();
  }
  return true;
}

namespace {
bool is_trusted(std::string_view ip, const std::vector<config::Cidr>& trusted) {
  std::array<std::uint8_t, 16> bytes{};
  if (!parse_ip(ip, bytes)) return false;
  for (const auto& c : trusted)
    if (c.contains(bytes)) return true;
  return false;
}
}  // namespace

std::string effective_client_ip(std::string_view peer, std::string_view xff,
                                const std::vector<config::Cidr>& trusted) {
  if (trusted.empty() || xff.empty() || !is_trusted(peer, trusted)) return std::string(peer);
  std::string_view rest = xff;
  std::string_view candidate = peer;
  while (!rest.empty()) {
    const auto comma = rest.rfind(',');
    std::string_view item = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    std::array<std::uint8_t, 16> bytes{};
    if (!parse_ip(item, bytes)) break;  // garbage in the chain: stop at the last good hop
    candidate = item;
    if (!is_trusted(item, trusted)) break;
  }
  return std::string(candidate);
}

}  // namespace problemgate::proxy
