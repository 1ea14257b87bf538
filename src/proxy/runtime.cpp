#include "proxy/runtime.hpp"

namespace problemgate::proxy {

Runtime::Runtime(config::Config cfg, const core::Clock& clock)
    : config(std::move(cfg)), routes(config.routes) {
  limiters.reserve(config.routes.size());
  for (const auto& route : config.routes) {
    // The loader already gave every route without its own policy the top-level default, and
    // `rate_limit: off` on a route is nullopt: falling back to the default here would undo it.
    const auto& policy = route.rate_limit;
    limiters.push_back(policy ? std::make_shared<ratelimit::RateLimiter>(*policy, clock) : nullptr);
  }
}

}  // namespace problemgate::proxy
