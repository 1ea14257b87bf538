#include "proxy/forward_rules.hpp"

#include "problemgate/config/config.hpp"

namespace problemgate::proxy {

std::uint8_t retry_method_bit(std::string_view method) {
  if (method == "GET") return config::kRetryGet;
  if (method == "HEAD") return config::kRetryHead;
  if (method == "OPTIONS") return config::kRetryOptions;
  if (method == "PUT") return config::kRetryPut;
  if (method == "DELETE") return config::kRetryDelete;
  return 0;
}

}  // namespace problemgate::proxy
