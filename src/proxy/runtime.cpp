#include "proxy/runtime.hpp"

namespace problemgate::proxy {

namespace {

// The loader already gave every route without its own policy the top-level default, and
// `rate_limit: off` on a route is nullopt: falling back to the default here would undo it.
const std::optional<config::RateLimitPolicy>& policy_of(const config::Config&, const config::Route& r) {
  return r.rate_limit;
}

bool same_policy(const config::RateLimitPolicy& a, const config::RateLimitPolicy& b) {
  return a.limit == b.limit && a.window == b.window && a.key == b.key &&
         a.header_name == b.header_name && a.burst == b.burst;
}

}  // namespace

Runtime::Runtime(config::Config cfg, const core::Clock& clock, const Runtime* previous)
    : config(std::move(cfg)), routes(config.routes) {
  limiters.reserve(config.routes.size());
  for (const auto& route : config.routes) {
    const auto& policy = policy_of(config, route);
    std::shared_ptr<ratelimit::RateLimiter> limiter;
    if (policy && previous) {
      for (std::size_t i = 0; i < previous->config.routes.size(); ++i) {
        const auto& old_route = previous->config.routes[i];
        const auto& old_policy = policy_of(previous->config, old_route);
        if (old_route.name == route.name && old_policy && same_policy(*old_policy, *policy)) {
          limiter = previous->limiters[i];
          break;
        }
      }
    }
    if (policy && !limiter) limiter = std::make_shared<ratelimit::RateLimiter>(*policy, clock);
    limiters.push_back(std::move(limiter));
  }
}

}  // namespace problemgate::proxy
