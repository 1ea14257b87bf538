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

/// A certificate chain (PEM, leaf first) and its private key: file paths.
struct CertKey {
  std::string cert;
  std::string key;
  bool operator==(const CertKey&) const = default;
};

/// TLS on a listener (`listen: [{address, tls: {...}}]`). The files are read at start-up and
/// on every reload.
struct ListenTls {
  /// `cert`/`key` first (the default), then `certificates` (chosen by SNI).
  std::vector<CertKey> certificates;
  enum class Version { tls1_2, tls1_3 } min_version = Version::tls1_2;
  std::vector<std::string> alpn{"http/1.1"};
  std::string client_ca;  ///< empty = no client certificate asked for
  Duration handshake_timeout{10'000};
  bool operator==(const ListenTls&) const = default;
};

/// A host:port to listen on or connect to. `host` is a literal address or name; an IPv6
/// literal is stored without brackets (ready for address parsing), e.g. "::1".
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  /// Listeners only: TLS when set.
  std::optional<ListenTls> tls;
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
  Duration header_timeout{10'000};     ///< absolute deadline for the head -> 408
  Duration body_idle_timeout{30'000};  ///< between body reads
  Duration idle_timeout{60'000};       ///< keep-alive idle
  Duration write_timeout{30'000};      ///< downstream write progress
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
  std::optional<Endpoint> listen = Endpoint{"127.0.0.1", 9901, std::nullopt};
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

/// What the access log and /metrics may say (issue 23): bounded labels, redacted secrets.
struct Telemetry {
  /// The subcodes that may become a `subcode` label value of problemgate_rewritten_errors_total;
  /// any other is counted as `other`. Unset: the subcodes of problem.legacy_codes.
  std::optional<std::vector<std::string>> subcode_labels;
  /// Query parameters whose value the access log writes as REDACTED (names compared exactly).
  std::vector<std::string> redact_query;
  /// The longest upstream 5xx text the access log keeps as `upstream_detail` (bytes).
  std::size_t max_logged_detail = 2048;
  static constexpr std::size_t kMaxLoggedDetailLimit = 64 * 1024;
  static constexpr std::size_t kMaxSubcodeLabels = 500;
};

struct RateLimitHeaders {
  enum class Format { x_ratelimit, ietf, both } format = Format::x_ratelimit;
  enum class Reset { epoch, delta } reset = Reset::epoch;
};

/// One address of an upstream (`url` or an item of `endpoints`): a literal IP or a DNS name,
/// whose every A/AAAA record becomes an endpoint.
struct UpstreamTarget {
  std::string url;   ///< as written
  std::string host;  ///< name or IP literal; IPv6 without brackets
  std::uint16_t port = 80;
  bool https = false;  ///< https:// (port 443 by default)
  bool operator==(const UpstreamTarget&) const = default;
};

/// Active health checks (`health_check:`): one checker per upstream and process.
struct HealthCheck {
  std::string path = "/healthz";
  Duration interval{5'000};
  Duration timeout{1'000};
  std::uint32_t unhealthy_threshold = 3;
  std::uint32_t healthy_threshold = 2;
  bool operator==(const HealthCheck&) const = default;
};

/// Passive outlier ejection (`outlier:`), from live traffic (Envoy outlier detection).
struct Outlier {
  std::uint32_t consecutive_failures = 5;  ///< 0 = never eject
  Duration ejection_time{30'000};          ///< doubled on each repeat, capped at 5m
  std::uint32_t max_ejected_percent = 50;
  bool operator==(const Outlier&) const = default;
};

/// Retries on another endpoint (`retries:`).
struct Retries {
  std::uint32_t attempts = 1;  ///< extra tries; 0 = none
  bool on_connect_failure = true;
  bool on_reset = true;  ///< reset_before_response: only methods in `methods`, without a body
  /// Bits of the methods a reset may be retried for (kRetryGet...); PUT and DELETE opt-in.
  std::uint8_t methods = 0;
  std::uint32_t budget_percent = 20;  ///< retries per 100 requests, per worker
  std::uint32_t budget_reserve = 10;  ///< retries banked for a burst (Finagle's minimum)
  bool operator==(const Retries&) const = default;
};
inline constexpr std::uint8_t kRetryGet = 1, kRetryHead = 2, kRetryOptions = 4, kRetryPut = 8,
                              kRetryDelete = 16;
inline constexpr std::uint8_t kRetryDefaultMethods = kRetryGet | kRetryHead | kRetryOptions;

/// TLS to an upstream (`tls:`), used when its URLs are https://.
struct UpstreamTls {
  std::string ca_file;      ///< empty = the system's trust store
  std::string server_name;  ///< SNI and the name verified; empty = each URL's host
  bool verify = true;       ///< false only with a warning at start-up
  std::string cert;         ///< client certificate (mTLS), with key
  std::string key;
  bool operator==(const UpstreamTls&) const = default;
};

struct Upstream {
  std::string name;
  std::string url;   ///< as written: http://host:port
  std::string host;  ///< name or IP literal; IPv6 without brackets
  std::uint16_t port = 80;
  Duration connect_timeout{2'000};
  Duration timeout{30'000};       ///< until the response head arrives
  Duration idle_timeout{30'000};  ///< pooled connection lifetime when idle
  /// Before a pooled connection is reused, one non-blocking peek checks it for a close or stray
  /// bytes. A request that can be retried (no body, idempotent) skips the check on a
  /// connection idle for less than this; 0 checks every reuse.
  Duration reuse_check_after{0};
  std::uint32_t max_connections = 256;  ///< per endpoint and worker thread
  /// `url` alone, or `endpoints`: what the balancer spreads requests over (never empty once
  /// validated; host/port above are the first one's).
  std::vector<UpstreamTarget> endpoints;
  Duration resolve{30'000};  ///< DNS names re-resolved this often; 0 = once
  enum class Lb { round_robin, least_request } lb = Lb::round_robin;
  std::optional<HealthCheck> health_check;
  Outlier outlier;
  Retries retries{1, true, true, kRetryDefaultMethods, 20, 10};
  bool https = false;  ///< every URL is https:// (validated: never mixed)
  UpstreamTls tls;
};

struct RateLimitPolicy {
  std::uint64_t limit = 0;
  Duration window{60'000};
  enum class Key { client_ip, header, route } key = Key::client_ip;
  std::string header_name;  ///< for Key::header
  std::uint64_t burst = 0;
};

/// Where rate-limit state lives (config `rate_limit_store:`): this process's memory, or a Redis
/// server shared by every instance. Validation guarantees `host` is set and the URL is redis://.
struct RateLimitStore {
  enum class Type { local, redis } type = Type::local;
  std::string url = "redis://127.0.0.1:6379/0";  ///< as written (a password in it is a secret)
  std::string host = "127.0.0.1";                ///< name or IP literal; IPv6 without brackets
  std::uint16_t port = 6379;
  std::uint32_t db = 0;  ///< SELECTed after connecting when not 0
  std::string username;  ///< AUTH username password (Redis 6 ACL) when set
  std::string password;  ///< AUTH password when set; never dumped or logged
  Duration timeout{50};  ///< per check, round trip included; past it on_error applies
  /// A check that failed or timed out: allow = serve without rate-limit headers (fail open,
  /// counted and logged), deny = 503 gateway_unavailable.
  enum class OnError { allow, deny } on_error = OnError::allow;
  std::string key_prefix = "problemgate:";
  std::uint32_t pool_size = 2;  ///< connections per worker thread
};

struct Route {
  std::string name;
  std::string prefix = "/";
  std::string host;                ///< lowercase, no port; empty = any host
  std::string upstream;            ///< a name in Config::upstreams (validated)
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
  std::vector<Endpoint> listen{Endpoint{"0.0.0.0", 8080, std::nullopt}};
  unsigned threads = 0;  ///< 0 = auto (number of cores)
  Admin admin;
  Drain drain;
  Limits limits;
  RequestId request_id;
  std::vector<Cidr> trusted_proxies;
  problem::Options problem;
  RateLimitHeaders rate_limit_headers;
  std::optional<RateLimitPolicy> rate_limit;  ///< default policy for routes without their own
  RateLimitStore rate_limit_store;
  bool access_log = true;  ///< one JSON line per request on stdout
  Telemetry telemetry;
  std::vector<Upstream> upstreams;
  std::vector<Route> routes;
  std::string source;  ///< file it came from, or "<flags>"

  /// Threads to run: `threads`, or the number of cores when 0.
  unsigned worker_threads() const noexcept;
};

}  // namespace problemgate::config
