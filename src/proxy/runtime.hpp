#pragma once
#include <memory>
#include <string>
#include <vector>

#include "problemgate/config/config.hpp"
#include "problemgate/core/clock.hpp"
#include "problemgate/http1/tls.hpp"
#include "problemgate/ratelimit/gcra.hpp"
#include "problemgate/ratelimit/rate_limiter.hpp"
#include "problemgate/routing/route_table.hpp"
#include "problemgate/upstream/cluster.hpp"
#include "problemgate/upstream/cluster_manager.hpp"

namespace problemgate::proxy {

/// Everything a request needs from the configuration, built once per config load and shared
/// read-only by every worker (Envoy's FilterConfig). The rate limiters are the one mutable
/// part; they are thread-safe themselves.
struct Runtime {
  /// `previous` (may be null): rate-limit counters of routes whose name and policy are
  /// unchanged carry over, so a reload never hands every client a fresh quota. `limiter_key`
  /// keys the limiters' hash of client keys: one per process (draw_limiter_key), passed to every
  /// reload, so all limiters of a process store a client's key under the same digest.
  ///
  /// Upstream clusters whose endpoints and outlier/health settings are unchanged carry over
  /// too (with their ejections and health verdicts); new ones resolve their names here
  /// (blocking: this runs at start-up and on reload, never on a worker) and are handed to
  /// `manager` (null in tests: then nothing is re-resolved or health-checked). `hosts_file`:
  /// see upstream::Cluster.
  ///
  /// TLS files (listener certificates, upstream CA bundles and client certificates) are read
  /// first; one that cannot be used throws std::runtime_error naming the config path, the
  /// file and the reason, before anything else is made (a reload is then refused whole and
  /// the running certificates stay).
  Runtime(config::Config cfg, const core::Clock& clock, const ratelimit::HashKey& limiter_key,
          const Runtime* previous = nullptr, upstream::ClusterManager* manager = nullptr,
          const std::string& hosts_file = {});

  config::Config config;
  routing::RouteTable routes;
  /// One per route (index as in config.routes); null when the route has no policy.
  std::vector<std::shared_ptr<ratelimit::RateLimiter>> limiters;
  /// The same policies in µs, for the shared store's script (rate_limit_store.type: redis).
  std::vector<ratelimit::Gcra> store_gcra;
  /// The process's hash key: a shared store's client starts from it (and adopts the store's).
  ratelimit::HashKey limiter_key;
  /// One per upstream (index as in config.upstreams), shared by every worker.
  std::vector<std::shared_ptr<upstream::Cluster>> clusters;
  /// One per config.listen entry: a TLS listener's certificates and settings, read from their
  /// files when this Runtime was made (start-up, every reload); null for a plain listener. A
  /// connection keeps the one it was accepted with.
  std::vector<std::shared_ptr<const http1::ServerTls>> listener_tls;

  /// The TLS contexts of the TLS listener on `host` that bound `port`, with its listen entry;
  /// null when none (the listener is plain). `index` is the listener's place in the config it
  /// started with: tried first, so two TLS listeners on port 0 of one host keep their own
  /// certificates while a reload keeps the order (a reordered list is searched by address).
  std::shared_ptr<const http1::ServerTls> tls_for(std::size_t index, const std::string& host,
                                                  std::uint16_t port,
                                                  const config::ListenTls** settings) const {
    auto fits = [&](const config::Endpoint& l) {
      return l.tls && l.host == host && (l.port == port || l.port == 0);
    };
    if (index < config.listen.size() && fits(config.listen[index])) {
      *settings = &*config.listen[index].tls;
      return listener_tls[index];
    }
    for (std::size_t i = 0; i < config.listen.size(); ++i) {
      const auto& l = config.listen[i];
      if (fits(l)) {
        *settings = &*l.tls;
        return listener_tls[i];
      }
    }
    return nullptr;
  }

  /// The subcodes that may be a metrics label value: telemetry.subcode_labels, else every
  /// subcode the legacy table and route rules can produce. Sorted.
  std::vector<std::string> subcode_labels;
  /// `subcode` when it is one of subcode_labels (or empty), else "other".
  std::string_view subcode_label(std::string_view subcode) const noexcept;

  std::size_t route_index(const config::Route* r) const noexcept {
    return static_cast<std::size_t>(r - config.routes.data());
  }
};

/// A fresh secret key for the limiters' hash, from the OS's random source (getrandom(2)). Called
/// once at start-up; throws std::system_error if the OS cannot provide one.
ratelimit::HashKey draw_limiter_key();

}  // namespace problemgate::proxy
