#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>

#include "problemgate/obs/tls_counters.hpp"
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace problemgate::obs {

/// A Prometheus histogram with fixed latency buckets (seconds), up to 60 s so the default
/// upstream timeout (30 s) and what runs past it land in a bucket of their own, not in +Inf.
/// observe() is lock-free; counts are relaxed atomics written by one worker thread and read by
/// the scraper.
class Histogram {
 public:
  static constexpr std::array<double, 16> kBounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                  0.05,   0.1,   0.25,   0.5,   1.0,  2.5,
                                                  5.0,    10.0,  30.0,   60.0};
  void observe(double seconds) noexcept;
  std::array<std::uint64_t, kBounds.size() + 1> counts() const noexcept;
  std::uint64_t sum_us() const noexcept { return sum_us_.load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> sum_us_{0};
};

/// Increments a counter owned by one writer thread (no RMW needed: only the owner writes).
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

enum class MethodLabel : std::uint8_t { get, head, post, put, patch, del, options, other, count };
std::string_view method_label_name(MethodLabel m) noexcept;
MethodLabel method_label(std::string_view method) noexcept;

/// Why a WebSocket tunnel ended (problemgate_tunnels_closed_total's `reason`).
enum class TunnelClose : std::uint8_t {
  client_closed,
  upstream_closed,
  idle_timeout,
  write_timeout,
  drain,
  count
};
std::string_view tunnel_close_name(TunnelClose r) noexcept;

/// Statuses 100..599 as indexes 0..499 (problemgate_requests_total's `code`).
inline constexpr std::size_t kStatusCodes = 500;
/// The status class index 0..4 of a status 100..599 (`status_class` 1xx..5xx).
inline constexpr std::size_t status_class_index(int status) noexcept {
  return status >= 100 && status <= 599 ? static_cast<std::size_t>(status / 100 - 1) : 4;
}

/// Counters of one route on one worker.
struct RouteCounters {
  explicit RouteCounters(std::string r) : route(std::move(r)) {}
  std::string route;
  /// [method][status 100..599 -> 0..499]
  std::array<std::array<std::atomic<std::uint64_t>, kStatusCodes>,
             static_cast<std::size_t>(MethodLabel::count)>
      requests{};
  /// By the status class of the response (index status_class_index).
  std::array<Histogram, 5> duration;
  /// Request start at the gateway (before any connect) to the upstream's response head, by the
  /// upstream status class.
  std::array<Histogram, 5> upstream_duration;
  /// The request on an upstream connection in hand (written) to its response head: the
  /// upstream's own time to answer, by the upstream status class.
  std::array<Histogram, 5> upstream_response_head;
  std::atomic<std::uint64_t> request_bytes{0};   ///< bytes read from clients (heads and bodies)
  std::atomic<std::uint64_t> response_bytes{0};  ///< bytes written to clients
  std::atomic<std::uint64_t> rate_limit_allowed{0};
  std::atomic<std::uint64_t> rate_limit_denied{0};
  std::atomic<std::uint64_t> unrecognised_bodies{0};
  std::atomic<std::uint64_t> oversized_errors{0};
  std::atomic<std::uint64_t> tunnels_opened{0};
  std::atomic<std::uint64_t> tunnels_open{0};  ///< gauge
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(TunnelClose::count)>
      tunnels_closed{};
  std::atomic<std::uint64_t> upgrades_refused{0};  ///< websocket: false
};

enum class UpstreamFailure : std::uint8_t {
  refused,
  timeout,
  reset,
  bad_response,
  exhausted,
  count
};
std::string_view upstream_failure_name(UpstreamFailure f) noexcept;

/// Counters and gauges of one upstream pool on one worker.
struct UpstreamCounters {
  explicit UpstreamCounters(std::string u) : upstream(std::move(u)) {}
  std::string upstream;
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(UpstreamFailure::count)>
      failures{};
  std::atomic<std::uint64_t> connects{0};
  std::atomic<std::uint64_t> reuses{0};
  std::atomic<std::uint64_t> open{0};  ///< gauge
  std::atomic<std::uint64_t> idle{0};  ///< gauge
  std::atomic<std::uint64_t> retries{0};
  Histogram connect_duration;  ///< new connections: connect() started to established
};

enum class StoreCheck : std::uint8_t { allowed, limited, error, timeout, count };
std::string_view store_check_name(StoreCheck c) noexcept;
enum class StoreConnState : std::uint8_t { connecting, connected, disconnected, count };
std::string_view store_conn_state_name(StoreConnState s) noexcept;

/// The shared rate-limit store (Redis) on one worker: checks by result, round trips, and its
/// connections by state (gauges, moved by the worker as connections change state).
struct StoreCounters {
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(StoreCheck::count)> checks{};
  Histogram round_trip;
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(StoreConnState::count)>
      connections{};
  std::atomic<std::uint64_t> script_loads{0};
  void move(std::optional<StoreConnState> from, std::optional<StoreConnState> to) noexcept {
    if (from) connections[static_cast<std::size_t>(*from)].fetch_sub(1, std::memory_order_relaxed);
    if (to) connections[static_cast<std::size_t>(*to)].fetch_add(1, std::memory_order_relaxed);
  }
};

/// One worker's metrics. The worker writes; the admin thread reads (render). Counter objects
/// are created under a mutex and never move or die (std::deque), so the worker can cache plain
/// pointers to them and count with relaxed atomics: nothing on the request path takes a lock
/// except the first sighting of a rewritten-error label set.
class WorkerMetrics {
 public:
  RouteCounters& route(std::string_view name);
  UpstreamCounters& upstream(std::string_view name);
  /// Rewritten upstream errors by (route, dialect, code, subcode). Label sets are capped
  /// (kMaxRewriteSeries); beyond the cap they are counted under subcode="other".
  void count_rewrite(std::string_view route, std::string_view dialect, std::string_view code,
                     std::string_view subcode);

  static constexpr std::size_t kMaxRewriteSeries = 2000;

  StoreCounters& store() noexcept { return store_; }

 private:
  StoreCounters store_;
  friend class Metrics;
  mutable std::mutex mutex_;
  std::deque<RouteCounters> routes_;
  std::deque<UpstreamCounters> upstreams_;
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  /// Key: route \0 dialect \0 code \0 subcode. Heterogeneous lookup: no allocation for a
  /// label set seen before.
  std::unordered_map<std::string, std::uint64_t, KeyHash, std::equal_to<>> rewrites_;
  std::string key_scratch_;
};

/// All workers' metrics plus process-wide ones; renders the Prometheus text exposition.
class Metrics {
 public:
  explicit Metrics(std::size_t workers);
  WorkerMetrics& worker(std::size_t i) { return *workers_[i]; }

  std::atomic<std::uint64_t> reloads_ok{0};
  std::atomic<std::uint64_t> reloads_failed{0};
  std::atomic<std::uint64_t> connections_rejected{0};
  /// Unix seconds of the last config load that succeeded (start-up included), and whether the
  /// last attempt succeeded (Prometheus' own config_last_reload_* pair).
  std::atomic<std::int64_t> last_reload_success_s{0};
  std::atomic<bool> last_reload_ok{true};
  /// problemgate_build_info's labels; set before the workers start, read-only after.
  std::string build_version = "unknown";
  std::string build_commit = "unknown";
  TlsCounters tls;

  /// `active_connections` and `access_log_dropped` are sampled by the caller (they live with
  /// the server).
  std::string render(std::uint64_t active_connections, std::uint64_t access_log_dropped = 0) const;

 private:
  void render_store(std::string& out) const;
  std::vector<std::unique_ptr<WorkerMetrics>> workers_;
};

/// Prometheus label-value escaping (backslash, double quote, newline).
void append_label_value(std::string& out, std::string_view v);
/// Appends a metric family's "# HELP" and "# TYPE" lines (text exposition format).
void append_metric_header(std::string& out, std::string_view name, std::string_view type,
                          std::string_view help);

/// The standard process_* metrics (Prometheus client conventions) of this process, read from
/// /proc/self: process_cpu_seconds_total, process_resident_memory_bytes,
/// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds.
/// A file that cannot be read leaves its metric out (never an error).
void render_process_metrics(std::string& out);

}  // namespace problemgate::obs
