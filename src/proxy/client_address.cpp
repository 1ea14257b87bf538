#include "proxy/client_address.hpp"

#include "problemgate/core/ip_address.hpp"

namespace problemgate::proxy {

namespace {
bool is_trusted(std::string_view ip, const std::vector<core::Cidr>& trusted) {
  const auto bytes = core::parse_ip(ip);
  if (!bytes) return false;
  for (const auto& c : trusted)
    if (c.contains(*bytes)) return true;
  return false;
}
}  // namespace

std::string effective_client_ip(std::string_view peer, std::string_view xff,
                                const std::vector<core::Cidr>& trusted) {
  if (trusted.empty() || xff.empty() || !is_trusted(peer, trusted)) return std::string(peer);
  std::string_view rest = xff;
  std::string_view candidate = peer;
  while (!rest.empty()) {
    const auto comma = rest.rfind(',');
    std::string_view item = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!core::parse_ip(item)) break;  // garbage in the chain: stop at the last good hop
    candidate = item;
    if (!is_trusted(item, trusted)) break;
  }
  return std::string(candidate);
}

}  // namespace problemgate::proxy
