#pragma once
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "problemgate/core/ip_address.hpp"
#include "problemgate/problem/options.hpp"

namespace problemgate::config {

using Duration = std::chrono::milliseconds;

/// A host:port to listen on or connect to. `host` is a literal address or name; an IPv6
/// literal is stored without brackets (ready for address parsing), e.g. "::1".
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  /// "host:port", or "[v6]:port" so the result parses back.
  std::string to_string() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

/// Client-side limits (config `limits:`). Defaults and their anchors: docs in README.
struct Limits {
  std::size_t max_request_line = 8 * 1024;   ///< -> 414
  std::size_t max_header_bytes = 32 * 1024;  ///< -> 431
  std::size_t max_header_fields = 100;       ///< -> 431
  std::uint64_t max_body_bytes = 0;          ///< 0 = unlimited (streams); else -> 413
  /// Body bytes read before an upstream connection is taken (nginx proxy_request_buffering):
  /// a slow sender holds only its own connection; larger bodies stream after this much.
  std::size_t request_buffer_bytes = 16 * 1024;
  /// Access-log lines queued for stdout; past it lines are dropped and counted, never waited
  /// for (a stalled log reader must not stall requests).
  std::size_t access_log_buffer_bytes = 1024 * 1024;
  Duration header_timeout{10'000};           ///< absolute deadline for the head -> 408
  Duration body_idle_timeout{30'000};        ///< between body reads
  Duration idle_timeout{60'000};             ///< keep-alive idle
  Duration write_timeout{30'000};            ///< downstream write progress
  std::uint32_t max_requests_per_connection = 1000;
  std::uint32_t max_connections = 4096;
  Duration drain_timeout{30'000};
  /// An upgraded connection (WebSocket tunnel) that moves no byte either way this long is
  /// closed (Envoy's stream_idle_timeout, 5 min).
  Duration tunnel_idle_timeout{300'000};
};

/// Shutdown (SIGTERM/SIGINT) behaviour beyond limits.drain_timeout.
struct Drain {
  /// Keep accepting (and serving, with Connection: close) this long after the signal while
  /// /readyz says 503, so a load balancer slow to notice sees no refused connections.
  Duration accept_for{0};
};

/// The admin surface: two listeners, split as Istio splits 15000 (admin, loopback) from 15021
/// (health). Validation guarantees that `listen` is a loopback address or `token` is set.
struct Admin {
  /// Controls (GET /config, POST /reload) and the probes; nullopt = "off".
  std::optional<Endpoint> listen = Endpoint{"127.0.0.1", 9901};
  /// Probes and metrics only (/healthz, /readyz, /metrics), for the pod IP; nullopt = "off".
  std::optional<Endpoint> probes_listen;
  /// File holding the bearer token the controls require ("" = none): read once at load.
  std::string token_file;
  /// Its content, surrounding whitespace trimmed. A secret: never dumped or logged.
  std::string token;
};

struct RequestId {
  std::string header = "X-Request-Id";
  bool trust_incoming = true;
};

/// Trusted-proxy networks (the type lives in core: the proxy checks them on every request).
using Cidr = core::Cidr;

struct RateLimitHeaders {
  enum class Format { x_ratelimit, ietf, both } format = Format::x_ratelimit;
  enum class Reset { epoch, delta } reset = Reset::epoch;
};

struct Upstream {
  std::string name;
  std::string url;  ///< as written: http://host:port
  std::string host;  ///< name or IP literal; IPv6 without brackets
  std::uint16_t port = 80;
  Duration connect_timeout{2'000};
  Duration timeout{30'000};       ///< until the response head arrives
  Duration idle_timeout{30'000};  ///< pooled connection lifetime when idle
  /// Before a pooled connection is reused, one non-blocking peek checks it for a close or stray
  /// bytes. A request that can be retried (no body, idempotent) skips the check on a
  /// connection idle for less than this; 0 checks every reuse.
  Duration reuse_check_after{0};
  std::uint32_t max_connections = 256;  ///< per worker thread
};

struct RateLimitPolicy {
  std::uint64_t limit = 0;
  Duration window{60'000};
  enum class Key { client_ip, header, route } key = Key::client_ip;
  std::string header_name;  ///< for Key::header
  std::uint64_t burst = 0;
};

struct Route {
  std::string name;
  std::string prefix = "/";
  std::string host;  ///< lowercase, no port; empty = any host
  std::string upstream;  ///< a name in Config::upstreams (validated)
  std::size_t upstream_index = 0;  ///< into Config::upstreams, set by validation
  bool strip_prefix = false;
  enum class HostHeader { keep, upstream } host_header = HostHeader::keep;
  /// A request path with an encoded '/' or '\\' (%2F, %5C): refused with 400 (default), or
  /// kept encoded and forwarded, for APIs whose identifiers contain slashes.
  enum class EscapedSlashes { reject, keep } escaped_slashes = EscapedSlashes::reject;
  problem::RouteOptions problem;  ///< normalize, dialect, rules
  /// The effective policy: the route's own, else the top-level default; nullopt = unlimited
  /// (no default, or `rate_limit: off`). The proxy never needs Config::rate_limit.
  std::optional<RateLimitPolicy> rate_limit;
  std::optional<std::uint64_t> max_body_bytes;  ///< overrides Limits::max_body_bytes; 0 = none
  /// `Upgrade: websocket` requests are forwarded and tunnelled after the upstream's 101; false
  /// refuses them with a canonical 400.
  bool websocket = true;
};

/// The validated, immutable configuration snapshot (built only by load.hpp's functions, which
/// guarantee every invariant documented here; runtime code asserts, never re-validates).
struct Config {
  std::vector<Endpoint> listen{Endpoint{"0.0.0.0", 8080}};
  unsigned threads = 0;  ///< 0 = auto (number of cores)
  Admin admin;
  Drain drain;
  Limits limits;
  RequestId request_id;
  std::vector<Cidr> trusted_proxies;
  problem::Options problem;
  RateLimitHeaders rate_limit_headers;
  std::optional<RateLimitPolicy> rate_limit;  ///< default policy for routes without their own
  bool access_log = true;  ///< one JSON line per request on stdout
  std::vector<Upstream> upstreams;
  std::vector<Route> routes;
  std::string source;  ///< file it came from, or "<flags>"

  /// Threads to run: `threads`, or the number of cores when 0.
  unsigned worker_threads() const noexcept;
};

}  // namespace problemgate::config
