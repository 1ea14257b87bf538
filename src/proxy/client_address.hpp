#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "problemgate/core/ip_address.hpp"

namespace problemgate::proxy {

/// The client address a request is attributed to (rate-limit keys). The socket peer, unless
/// the peer is a trusted proxy: then X-Forwarded-For is walked from the right, skipping
/// trusted hops, and the first untrusted address wins. Never trusts XFF by default.
std::string effective_client_ip(std::string_view peer, std::string_view xff,
                                const std::vector<core::Cidr>& trusted);

}  // namespace problemgate::proxy
