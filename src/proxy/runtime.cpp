#include "proxy/runtime.hpp"

namespace problemgate::proxy {

Runtime::Runtime(config::Config cfg, const core::Clock& clock)
    : config(std::move(cfg)), routes(config.routes) {
  limiters.reserve(config.routes.size());
  for (const auto& route : config.routes) {
    const auto& policy = route.rate_limit ? route.rate_limit : config.rate_limit;
    limiters.push_back(policy ? std::make_shared<ratelimit::RateLimiter>(*policy, clock) : nullptr);
  }
}

}  // namespace problemgate::proxy
