#include "problemgate/obs/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace problemgate::obs {

void Histogram::observe(double seconds) noexcept {
  std::size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  bump(buckets_[i]);
  bump(sum_us_, static_cast<std::uint64_t>(seconds * 1e6));
}

std::array<std::uint64_t, Histogram::kBounds.size() + 1> Histogram::counts() const noexcept {
  std::array<std::uint64_t, kBounds.size() + 1> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = buckets_[i].load(std::memory_order_relaxed);
  return out;
}

std::string_view store_check_name(StoreCheck c) noexcept {
  switch (c) {
    case StoreCheck::allowed: return "allowed";
    case StoreCheck::limited: return "limited";
    case StoreCheck::error: return "error";
    default: return "timeout";
  }
}

std::string_view store_conn_state_name(StoreConnState s) noexcept {
  switch (s) {
    case StoreConnState::connecting: return "connecting";
    case StoreConnState::connected: return "connected";
    default: return "disconnected";
  }
}

std::string_view method_label_name(MethodLabel m) noexcept {
  switch (m) {
    case MethodLabel::get: return "GET";
    case MethodLabel::head: return "HEAD";
    case MethodLabel::post: return "POST";
    case MethodLabel::put: return "PUT";
    case MethodLabel::patch: return "PATCH";
    case MethodLabel::del: return "DELETE";
    case MethodLabel::options: return "OPTIONS";
    default: return "other";
  }
}

MethodLabel method_label(std::string_view m) noexcept {
  if (m == "GET") return MethodLabel::get;
  if (m == "HEAD") return MethodLabel::head;
  if (m == "POST") return MethodLabel::post;
  if (m == "PUT") return MethodLabel::put;
  if (m == "PATCH") return MethodLabel::patch;
  if (m == "DELETE") return MethodLabel::del;
  if (m == "OPTIONS") return MethodLabel::options;
  return MethodLabel::other;
}

std::string_view upstream_failure_name(UpstreamFailure f) noexcept {
  switch (f) {
    case UpstreamFailure::refused: return "refused";
    case UpstreamFailure::timeout: return "timeout";
    case UpstreamFailure::reset: return "reset";
    case UpstreamFailure::bad_response: return "bad_response";
    case UpstreamFailure::exhausted: return "exhausted";
    default: return "other";
  }
}

std::string_view tunnel_close_name(TunnelClose r) noexcept {
  switch (r) {
    case TunnelClose::client_closed: return "client_closed";
    case TunnelClose::upstream_closed: return "upstream_closed";
    case TunnelClose::idle_timeout: return "idle_timeout";
    case TunnelClose::write_timeout: return "write_timeout";
    case TunnelClose::drain: return "drain";
    default: return "other";
  }
}

RouteCounters& WorkerMetrics::route(std::string_view name) {
  std::lock_guard lock(mutex_);
  for (auto& r : routes_)
    if (r.route == name) return r;
  return routes_.emplace_back(std::string(name));
}

UpstreamCounters& WorkerMetrics::upstream(std::string_view name) {
  std::lock_guard lock(mutex_);
  for (auto& u : upstreams_)
    if (u.upstream == name) return u;
  return upstreams_.emplace_back(std::string(name));
}

void WorkerMetrics::count_rewrite(std::string_view route, std::string_view dialect,
                                  std::string_view code, std::string_view subcode) {
  std::lock_guard lock(mutex_);
  auto make_key = [&](std::string_view sub) {
    key_scratch_.assign(route);
    key_scratch_ += '\0';
    key_scratch_ += dialect;
    key_scratch_ += '\0';
    key_scratch_ += code;
    key_scratch_ += '\0';
    key_scratch_ += sub;
  };
  make_key(subcode);
  auto it = rewrites_.find(std::string_view(key_scratch_));
  if (it == rewrites_.end() && rewrites_.size() >= kMaxRewriteSeries) {
    make_key("other");
    it = rewrites_.find(std::string_view(key_scratch_));
  }
  if (it == rewrites_.end()) it = rewrites_.emplace(key_scratch_, 0).first;
  ++it->second;
}

Metrics::Metrics(std::size_t workers) {
  for (std::size_t i = 0; i < workers; ++i) workers_.push_back(std::make_unique<WorkerMetrics>());
}

void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out.push_back(c);
  }
}

namespace {

void num(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

struct Label {
  std::string_view name, value;
};

void sample(std::string& out, std::string_view name, std::initializer_list<Label> labels,
            std::uint64_t v) {
  out += name;
  if (labels.size() > 0) {
    out += '{';
    bool first = true;
    for (const auto& l : labels) {
      if (!first) out += ',';
      first = false;
      out += l.name;
      out += "=\"";
      append_label_value(out, l.value);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  num(out, v);
  out += '\n';
}

using Counts = std::array<std::uint64_t, Histogram::kBounds.size() + 1>;

/// One histogram's series; `key`/`value` is its one label (e.g. route), `key2`/`value2` a
/// second one when not empty (e.g. status_class).
void histogram(std::string& out, std::string_view name, std::string_view key,
               std::string_view value, const Counts& counts, std::uint64_t sum_us,
               std::string_view key2 = {}, std::string_view value2 = {}) {
  std::uint64_t cumulative = 0;
  const std::string bucket_name = std::string(name) + "_bucket";
  const bool two = !key2.empty();
  for (std::size_t i = 0; i <= Histogram::kBounds.size(); ++i) {
    cumulative += counts[i];
    char le[32];
    if (i < Histogram::kBounds.size())
      std::snprintf(le, sizeof le, "%g", Histogram::kBounds[i]);
    else
      std::snprintf(le, sizeof le, "+Inf");
    if (two)
      sample(out, bucket_name, {{key, value}, {key2, value2}, {"le", le}}, cumulative);
    else
      sample(out, bucket_name, {{key, value}, {"le", le}}, cumulative);
  }
  char sum[48];
  std::snprintf(sum, sizeof sum, "%.6f", static_cast<double>(sum_us) / 1e6);
  out += name;
  out += "_sum{";
  out += key;
  out += "=\"";
  append_label_value(out, value);
  if (two) {
    out += "\",";
    out += key2;
    out += "=\"";
    append_label_value(out, value2);
  }
  out += "\"} ";
  out += sum;
  out += '\n';
  if (two)
    sample(out, std::string(name) + "_count", {{key, value}, {key2, value2}}, cumulative);
  else
    sample(out, std::string(name) + "_count", {{key, value}}, cumulative);
}

struct HistSum {
  Counts counts{};
  std::uint64_t sum_us = 0;
  void add(const Histogram& h) {
    const auto c = h.counts();
    for (std::size_t i = 0; i < c.size(); ++i) counts[i] += c[i];
    sum_us += h.sum_us();
  }
  bool any() const {
    return std::any_of(counts.begin(), counts.end(), [](auto v) { return v != 0; });
  }
};

constexpr std::string_view kClass[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

}  // namespace

void Metrics::render_store(std::string& out) const {
  std::array<std::uint64_t, static_cast<std::size_t>(StoreCheck::count)> checks{};
  std::array<std::uint64_t, static_cast<std::size_t>(StoreConnState::count)> conns{};
  std::array<std::uint64_t, Histogram::kBounds.size() + 1> rtt{};
  std::uint64_t rtt_sum = 0, loads = 0;
  for (const auto& w : workers_) {
    const auto& s = w->store_;
    for (std::size_t i = 0; i < checks.size(); ++i)
      checks[i] += s.checks[i].load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < conns.size(); ++i)
      conns[i] += s.connections[i].load(std::memory_order_relaxed);
    const auto c = s.round_trip.counts();
    for (std::size_t i = 0; i < rtt.size(); ++i) rtt[i] += c[i];
    rtt_sum += s.round_trip.sum_us();
    loads += s.script_loads.load(std::memory_order_relaxed);
  }
  append_metric_header(out, "problemgate_rate_limit_store_checks_total", "counter",
                       "Checks sent to the shared rate-limit store (Redis), by result.");
  for (std::size_t i = 0; i < checks.size(); ++i)
    sample(out, "problemgate_rate_limit_store_checks_total",
           {{"result", store_check_name(static_cast<StoreCheck>(i))}}, checks[i]);
  append_metric_header(out, "problemgate_rate_limit_store_round_trip_seconds", "histogram",
                       "Round trip of one check to the rate-limit store.");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    cumulative += rtt[i];
    char le[32];
    std::snprintf(le, sizeof le, "%g", Histogram::kBounds[i]);
    sample(out, "problemgate_rate_limit_store_round_trip_seconds_bucket", {{"le", le}}, cumulative);
  }
  cumulative += rtt.back();
  sample(out, "problemgate_rate_limit_store_round_trip_seconds_bucket", {{"le", "+Inf"}},
         cumulative);
  char sum[48];
  std::snprintf(sum, sizeof sum, "%.6f", static_cast<double>(rtt_sum) / 1e6);
  out += "problemgate_rate_limit_store_round_trip_seconds_sum ";
  out += sum;
  out += '\n';
  sample(out, "problemgate_rate_limit_store_round_trip_seconds_count", {}, cumulative);
  append_metric_header(out, "problemgate_rate_limit_store_connections", "gauge",
                       "Connections to the rate-limit store, by state.");
  for (std::size_t i = 0; i < conns.size(); ++i)
    sample(out, "problemgate_rate_limit_store_connections",
           {{"state", store_conn_state_name(static_cast<StoreConnState>(i))}}, conns[i]);
  append_metric_header(
      out, "problemgate_rate_limit_store_script_loads_total", "counter",
      "SCRIPT LOADs of the limiter script (each connection once, and after a NOSCRIPT).");
  sample(out, "problemgate_rate_limit_store_script_loads_total", {}, loads);
}

std::string Metrics::render(std::uint64_t active_connections,
                            std::uint64_t access_log_dropped) const {
  // Merge per-worker series by label set.
  struct RouteSum {
    std::array<std::array<std::uint64_t, kStatusCodes>,
               static_cast<std::size_t>(MethodLabel::count)>
        requests{};
    std::array<HistSum, 5> duration, upstream_duration, upstream_head;
    std::uint64_t allowed = 0, denied = 0, unrecognised = 0, oversized = 0, request_bytes = 0,
                  response_bytes = 0;
    std::uint64_t tunnels_opened = 0, tunnels_open = 0, upgrades_refused = 0;
    std::array<std::uint64_t, static_cast<std::size_t>(TunnelClose::count)> tunnels_closed{};
  };
  struct UpstreamSum {
    std::array<std::uint64_t, static_cast<std::size_t>(UpstreamFailure::count)> failures{};
    std::uint64_t connects = 0, reuses = 0, open = 0, idle = 0, retries = 0;
    HistSum connect;
  };
  std::map<std::string, RouteSum> routes;
  std::map<std::string, UpstreamSum> upstreams;
  std::map<std::tuple<std::string, std::string, std::string, std::string>, std::uint64_t> rewrites;
  for (const auto& w : workers_) {
    std::lock_guard lock(w->mutex_);
    for (const auto& r : w->routes_) {
      auto& s = routes[r.route];
      for (std::size_t m = 0; m < s.requests.size(); ++m)
        for (std::size_t c = 0; c < kStatusCodes; ++c)
          s.requests[m][c] += r.requests[m][c].load(std::memory_order_relaxed);
      for (std::size_t c = 0; c < 5; ++c) {
        s.duration[c].add(r.duration[c]);
        s.upstream_duration[c].add(r.upstream_duration[c]);
        s.upstream_head[c].add(r.upstream_response_head[c]);
      }
      s.request_bytes += r.request_bytes.load(std::memory_order_relaxed);
      s.response_bytes += r.response_bytes.load(std::memory_order_relaxed);
      s.allowed += r.rate_limit_allowed.load(std::memory_order_relaxed);
      s.denied += r.rate_limit_denied.load(std::memory_order_relaxed);
      s.unrecognised += r.unrecognised_bodies.load(std::memory_order_relaxed);
      s.oversized += r.oversized_errors.load(std::memory_order_relaxed);
      s.tunnels_opened += r.tunnels_opened.load(std::memory_order_relaxed);
      s.tunnels_open += r.tunnels_open.load(std::memory_order_relaxed);
      s.upgrades_refused += r.upgrades_refused.load(std::memory_order_relaxed);
      for (std::size_t i = 0; i < s.tunnels_closed.size(); ++i)
        s.tunnels_closed[i] += r.tunnels_closed[i].load(std::memory_order_relaxed);
    }
    for (const auto& up : w->upstreams_) {
      auto& s = upstreams[up.upstream];
      for (std::size_t f = 0; f < s.failures.size(); ++f)
        s.failures[f] += up.failures[f].load(std::memory_order_relaxed);
      s.connects += up.connects.load(std::memory_order_relaxed);
      s.reuses += up.reuses.load(std::memory_order_relaxed);
      s.open += up.open.load(std::memory_order_relaxed);
      s.idle += up.idle.load(std::memory_order_relaxed);
      s.retries += up.retries.load(std::memory_order_relaxed);
      s.connect.add(up.connect_duration);
    }
    for (const auto& [k, v] : w->rewrites_) {
      std::array<std::string, 4> parts;
      std::size_t part = 0;
      for (char c : k) {
        if (c == '\0' && part < 3)
          ++part;
        else
          parts[part] += c;
      }
      rewrites[std::make_tuple(parts[0], parts[1], parts[2], parts[3])] += v;
    }
  }

  std::string out;
  out.reserve(16384);
  append_metric_header(out, "problemgate_build_info", "gauge",
                       "Always 1; the version and commit of the running binary.");
  sample(out, "problemgate_build_info", {{"version", build_version}, {"commit", build_commit}}, 1);
  append_metric_header(out, "problemgate_requests_total", "counter",
                       "Requests by route, method, status code and status class.");
  for (const auto& [route, s] : routes)
    for (std::size_t m = 0; m < s.requests.size(); ++m)
      for (std::size_t c = 0; c < kStatusCodes; ++c)
        if (s.requests[m][c] != 0) {
          char code[8];
          const auto r = std::to_chars(code, code + sizeof code, c + 100);
          sample(out, "problemgate_requests_total",
                 {{"route", route},
                  {"method", method_label_name(static_cast<MethodLabel>(m))},
                  {"code", std::string_view(code, static_cast<std::size_t>(r.ptr - code))},
                  {"status_class", kClass[c / 100]}},
                 s.requests[m][c]);
        }
  append_metric_header(
      out, "problemgate_request_duration_seconds", "histogram",
      "Whole-request latency, head read to last byte written, by route and response status class.");
  for (const auto& [route, s] : routes)
    for (std::size_t c = 0; c < 5; ++c)
      if (s.duration[c].any())
        histogram(out, "problemgate_request_duration_seconds", "route", route, s.duration[c].counts,
                  s.duration[c].sum_us, "status_class", kClass[c]);
  append_metric_header(
      out, "problemgate_upstream_duration_seconds", "histogram",
      "Upstream latency, from choosing an endpoint (connect included) to the response head, by route and upstream status class.");
  for (const auto& [route, s] : routes)
    for (std::size_t c = 0; c < 5; ++c)
      if (s.upstream_duration[c].any())
        histogram(out, "problemgate_upstream_duration_seconds", "route", route,
                  s.upstream_duration[c].counts, s.upstream_duration[c].sum_us, "status_class",
                  kClass[c]);
  append_metric_header(
      out, "problemgate_upstream_response_head_duration_seconds", "histogram",
      "Request written on an upstream connection to its response head (no connect), by route and upstream status class.");
  for (const auto& [route, s] : routes)
    for (std::size_t c = 0; c < 5; ++c)
      if (s.upstream_head[c].any())
        histogram(out, "problemgate_upstream_response_head_duration_seconds", "route", route,
                  s.upstream_head[c].counts, s.upstream_head[c].sum_us, "status_class", kClass[c]);
  append_metric_header(out, "problemgate_request_bytes_total", "counter",
                       "Bytes read from clients (request heads and bodies), by route.");
  for (const auto& [route, s] : routes)
    if (s.request_bytes)
      sample(out, "problemgate_request_bytes_total", {{"route", route}}, s.request_bytes);
  append_metric_header(out, "problemgate_response_bytes_total", "counter",
                       "Bytes written to clients (response heads and bodies), by route.");
  for (const auto& [route, s] : routes)
    if (s.response_bytes)
      sample(out, "problemgate_response_bytes_total", {{"route", route}}, s.response_bytes);
  append_metric_header(out, "problemgate_rate_limit_decisions_total", "counter",
                       "Rate-limit decisions by route.");
  for (const auto& [route, s] : routes) {
    if (s.allowed + s.denied == 0) continue;
    sample(out, "problemgate_rate_limit_decisions_total",
           {{"route", route}, {"decision", "allowed"}}, s.allowed);
    sample(out, "problemgate_rate_limit_decisions_total",
           {{"route", route}, {"decision", "denied"}}, s.denied);
  }
  append_metric_header(out, "problemgate_rewritten_errors_total", "counter",
                       "Upstream error bodies rewritten, by route, dialect, code and subcode.");
  for (const auto& [k, v] : rewrites)
    sample(out, "problemgate_rewritten_errors_total",
           {{"route", std::get<0>(k)},
            {"dialect", std::get<1>(k)},
            {"code", std::get<2>(k)},
            {"subcode", std::get<3>(k)}},
           v);
  append_metric_header(out, "problemgate_unrecognised_bodies_total", "counter",
                       "Upstream error bodies in no structured dialect (fell to text), by route.");
  for (const auto& [route, s] : routes)
    if (s.unrecognised)
      sample(out, "problemgate_unrecognised_bodies_total", {{"route", route}}, s.unrecognised);
  append_metric_header(
      out, "problemgate_oversized_errors_total", "counter",
      "Upstream error bodies over max_error_body, answered with the status-only problem (dialect oversize).");
  for (const auto& [route, s] : routes)
    if (s.oversized)
      sample(out, "problemgate_oversized_errors_total", {{"route", route}}, s.oversized);
  append_metric_header(out, "problemgate_tunnels_open", "gauge",
                       "WebSocket tunnels open now, by route.");
  for (const auto& [route, s] : routes)
    if (s.tunnels_opened)
      sample(out, "problemgate_tunnels_open", {{"route", route}}, s.tunnels_open);
  append_metric_header(out, "problemgate_tunnels_total", "counter",
                       "WebSocket tunnels opened (upstream answered 101), by route.");
  for (const auto& [route, s] : routes)
    if (s.tunnels_opened)
      sample(out, "problemgate_tunnels_total", {{"route", route}}, s.tunnels_opened);
  append_metric_header(out, "problemgate_tunnels_closed_total", "counter",
                       "WebSocket tunnels closed, by route and reason.");
  for (const auto& [route, s] : routes)
    if (s.tunnels_opened)
      for (std::size_t i = 0; i < s.tunnels_closed.size(); ++i)
        sample(out, "problemgate_tunnels_closed_total",
               {{"route", route}, {"reason", tunnel_close_name(static_cast<TunnelClose>(i))}},
               s.tunnels_closed[i]);
  append_metric_header(out, "problemgate_upgrades_refused_total", "counter",
                       "WebSocket upgrades refused (400) on routes with websocket: false.");
  for (const auto& [route, s] : routes)
    if (s.upgrades_refused)
      sample(out, "problemgate_upgrades_refused_total", {{"route", route}}, s.upgrades_refused);
  append_metric_header(out, "problemgate_upstream_failures_total", "counter",
                       "Upstream failures by kind.");
  for (const auto& [up, s] : upstreams)
    for (std::size_t f = 0; f < s.failures.size(); ++f)
      sample(out, "problemgate_upstream_failures_total",
             {{"upstream", up}, {"kind", upstream_failure_name(static_cast<UpstreamFailure>(f))}},
             s.failures[f]);
  append_metric_header(out, "problemgate_upstream_connections_opened_total", "counter",
                       "New upstream connections.");
  for (const auto& [up, s] : upstreams)
    sample(out, "problemgate_upstream_connections_opened_total", {{"upstream", up}}, s.connects);
  append_metric_header(out, "problemgate_upstream_connections_reused_total", "counter",
                       "Requests sent on a pooled keep-alive connection.");
  for (const auto& [up, s] : upstreams)
    sample(out, "problemgate_upstream_connections_reused_total", {{"upstream", up}}, s.reuses);
  append_metric_header(
      out, "problemgate_upstream_retries_total", "counter",
      "Requests retried: on a new connection after a stale pooled one failed, or on another endpoint.");
  for (const auto& [up, s] : upstreams)
    sample(out, "problemgate_upstream_retries_total", {{"upstream", up}}, s.retries);
  append_metric_header(out, "problemgate_upstream_connect_duration_seconds", "histogram",
                       "New upstream connections: connect started to established.");
  for (const auto& [up, s] : upstreams)
    if (s.connect.any())
      histogram(out, "problemgate_upstream_connect_duration_seconds", "upstream", up,
                s.connect.counts, s.connect.sum_us);
  append_metric_header(out, "problemgate_upstream_pool_connections", "gauge",
                       "Open upstream connections (in use + idle).");
  for (const auto& [up, s] : upstreams)
    sample(out, "problemgate_upstream_pool_connections", {{"upstream", up}}, s.open);
  append_metric_header(out, "problemgate_upstream_pool_idle_connections", "gauge",
                       "Idle pooled upstream connections.");
  for (const auto& [up, s] : upstreams)
    sample(out, "problemgate_upstream_pool_idle_connections", {{"upstream", up}}, s.idle);
  append_metric_header(out, "problemgate_client_connections", "gauge", "Open client connections.");
  sample(out, "problemgate_client_connections", {}, active_connections);
  append_metric_header(out, "problemgate_client_connections_rejected_total", "counter",
                       "Client connections closed at accept because of limits.max_connections.");
  sample(out, "problemgate_client_connections_rejected_total", {},
         connections_rejected.load(std::memory_order_relaxed));
  append_metric_header(out, "problemgate_config_reloads_total", "counter",
                       "Config reloads by result.");
  sample(out, "problemgate_config_reloads_total", {{"result", "success"}},
         reloads_ok.load(std::memory_order_relaxed));
  sample(out, "problemgate_config_reloads_total", {{"result", "failure"}},
         reloads_failed.load(std::memory_order_relaxed));
  append_metric_header(out, "problemgate_config_last_reload_successful", "gauge",
                       "1 when the last config load (start-up or reload) succeeded, else 0.");
  sample(out, "problemgate_config_last_reload_successful", {},
         last_reload_ok.load(std::memory_order_relaxed) ? 1 : 0);
  append_metric_header(out, "problemgate_config_last_reload_success_timestamp_seconds", "gauge",
                       "Unix time of the last successful config load (start-up or reload).");
  sample(out, "problemgate_config_last_reload_success_timestamp_seconds", {},
         static_cast<std::uint64_t>(
             std::max<std::int64_t>(0, last_reload_success_s.load(std::memory_order_relaxed))));
  render_store(out);
  tls.render(out);
  append_metric_header(
      out, "problemgate_access_log_dropped_total", "counter",
      "Access-log lines dropped because stdout's reader did not keep up (limits.access_log_buffer_bytes).");
  sample(out, "problemgate_access_log_dropped_total", {}, access_log_dropped);
  render_process_metrics(out);
  return out;
}

void append_metric_header(std::string& out, std::string_view name, std::string_view type,
                          std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace problemgate::obs
