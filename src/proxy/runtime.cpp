#include "proxy/runtime.hpp"

#include <spdlog/spdlog.h>
#include <sys/random.h>

#include <algorithm>
#include <array>

#include "problemgate/problem/normalize.hpp"
#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace problemgate::proxy {

namespace {

// The loader already gave every route without its own policy the top-level default, and
// `rate_limit: off` on a route is nullopt: falling back to the default here would undo it.
const std::optional<config::RateLimitPolicy>& policy_of(const config::Config&,
                                                        const config::Route& r) {
  return r.rate_limit;
}

bool same_policy(const config::RateLimitPolicy& a, const config::RateLimitPolicy& b) {
  return a.limit == b.limit && a.window == b.window && a.key == b.key &&
         a.header_name == b.header_name && a.burst == b.burst;
}

/// What a Cluster is made of: same name, targets, resolution and outlier/health settings.
bool same_cluster(const config::Upstream& a, const config::Upstream& b) {
  return a.name == b.name && a.endpoints == b.endpoints && a.host == b.host && a.port == b.port &&
         a.resolve == b.resolve && a.health_check == b.health_check && a.outlier == b.outlier &&
         a.https == b.https && a.tls == b.tls;
}

http1::ServerTlsSettings server_settings(const config::ListenTls& t) {
  http1::ServerTlsSettings s;
  for (const auto& c : t.certificates) s.certificates.push_back({c.cert, c.key});
  s.tls13_only = t.min_version == config::ListenTls::Version::tls1_3;
  s.alpn = t.alpn;
  s.client_ca = t.client_ca;
  return s;
}

}  // namespace

Runtime::Runtime(config::Config cfg, const core::Clock& clock,
                 const ratelimit::HashKey& limiter_key_, const Runtime* previous,
                 upstream::ClusterManager* manager, const std::string& hosts_file)
    : config(std::move(cfg)), routes(config.routes), limiter_key(limiter_key_) {
  for (std::size_t i = 0; i < config.listen.size(); ++i) {
    const auto& l = config.listen[i];
    if (!l.tls) {
      listener_tls.push_back(nullptr);
      continue;
    }
    try {
      listener_tls.push_back(http1::ServerTls::make(server_settings(*l.tls)));
    } catch (const std::exception& e) {
      throw std::runtime_error(config.source + ": /listen/" + std::to_string(i) +
                               "/tls: " + e.what());
    }
  }
  std::vector<std::shared_ptr<upstream::Cluster>> kept(config.upstreams.size());
  std::vector<std::shared_ptr<boost::asio::ssl::context>> tls(config.upstreams.size());
  for (std::size_t i = 0; i < config.upstreams.size(); ++i) {
    const auto& up = config.upstreams[i];
    if (previous) {
      for (const auto& old : previous->clusters) {
        if (same_cluster(old->settings(), up) && old->hosts_file() == hosts_file) kept[i] = old;
      }
    }
    if (kept[i] || !up.https) continue;
    try {
      tls[i] = http1::make_client_context({up.tls.ca_file, up.tls.verify, up.tls.cert, up.tls.key});
    } catch (const std::exception& e) {
      throw std::runtime_error(config.source + ": /upstreams/" + up.name + "/tls: " + e.what());
    }
    if (!up.tls.verify)
      spdlog::warn(
          "upstream {}: tls.verify is false: its certificates are NOT checked; anyone on the path can "
          "read and change this traffic",
          up.name);
  }
  clusters.reserve(config.upstreams.size());
  for (std::size_t i = 0; i < config.upstreams.size(); ++i) {
    std::shared_ptr<upstream::Cluster> cluster = std::move(kept[i]);
    if (!cluster) {
      cluster =
          std::make_shared<upstream::Cluster>(config.upstreams[i], hosts_file, std::move(tls[i]));
      if (manager) manager->watch(cluster);
    }
    clusters.push_back(std::move(cluster));
  }
  limiters.reserve(config.routes.size());
  // µs, capped at 2^52: the script's Lua numbers are exact below 2^53.
  for (const auto& route : config.routes)
    store_gcra.push_back(route.rate_limit
                             ? ratelimit::Gcra::of(*route.rate_limit, 1000, std::int64_t{1} << 52)
                             : ratelimit::Gcra{});
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
    if (policy && !limiter)
      limiter = std::make_shared<ratelimit::RateLimiter>(*policy, clock, limiter_key_);
    limiters.push_back(std::move(limiter));
  }
  if (config.telemetry.subcode_labels) {
    subcode_labels = *config.telemetry.subcode_labels;
  } else {
    problem::known_subcodes(config.problem, subcode_labels);
    for (const auto& route : config.routes)
      for (const auto& rule : route.problem.rules)
        if (rule.set.subcode) subcode_labels.push_back(*rule.set.subcode);
  }
  std::sort(subcode_labels.begin(), subcode_labels.end());
  subcode_labels.erase(std::unique(subcode_labels.begin(), subcode_labels.end()),
                       subcode_labels.end());
}

std::string_view Runtime::subcode_label(std::string_view subcode) const noexcept {
  if (subcode.empty()) return subcode;
  const auto it = std::lower_bound(subcode_labels.begin(), subcode_labels.end(), subcode,
                                   [](const std::string& a, std::string_view b) { return a < b; });
  return it != subcode_labels.end() && *it == subcode ? subcode : std::string_view("other");
}

ratelimit::HashKey draw_limiter_key() {
  std::array<std::uint8_t, 16> bytes{};
  std::size_t filled = 0;
  while (filled < bytes.size()) {
    // Blocks only until the kernel's pool is first seeded (early boot); a signal may cut it short.
    const ssize_t n = getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(),
                              "getrandom for the rate-limit hash key");
    }
    filled += static_cast<std::size_t>(n);
  }
  return ratelimit::HashKey::from_bytes(bytes);
}

}  // namespace problemgate::proxy
