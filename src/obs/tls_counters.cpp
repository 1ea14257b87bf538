#include "problemgate/obs/tls_counters.hpp"

#include "problemgate/obs/metrics.hpp"

namespace problemgate::obs {

namespace {

std::string key_of(std::string_view a, std::string_view b) {
  std::string k(a);
  k += '\0';
  k += b;
  return k;
}

void bump(std::map<std::string, std::uint64_t, std::less<>>& m, std::string_view key) {
  auto it = m.find(key);
  if (it == m.end()) it = m.emplace(std::string(key), 0).first;
  ++it->second;
}

void line(std::string& out, std::string_view name, std::string_view l1, std::string_view v1,
          std::string_view l2, std::string_view v2, std::uint64_t n) {
  out += name;
  out += '{';
  out += l1;
  out += "=\"";
  append_label_value(out, v1);
  out += '"';
  if (!l2.empty()) {
    out += ',';
    out += l2;
    out += "=\"";
    append_label_value(out, v2);
    out += '"';
  }
  out += "} ";
  out += std::to_string(n);
  out += '\n';
}

}  // namespace

void TlsCounters::handshake_ok(std::string_view listener, bool resumed) {
  std::lock_guard lock(mutex_);
  bump(handshakes_, listener);
  if (resumed) bump(resumed_, listener);
}

void TlsCounters::handshake_failed(std::string_view listener, std::string_view reason) {
  std::lock_guard lock(mutex_);
  bump(failures_, key_of(listener, reason));
}

void TlsCounters::upstream_failed(std::string_view upstream, std::string_view reason) {
  std::lock_guard lock(mutex_);
  bump(upstream_failures_, key_of(upstream, reason));
}

std::uint64_t TlsCounters::failures(std::string_view listener, std::string_view reason) const {
  std::lock_guard lock(mutex_);
  const auto it = failures_.find(key_of(listener, reason));
  return it == failures_.end() ? 0 : it->second;
}

void TlsCounters::render(std::string& out) const {
  std::lock_guard lock(mutex_);
  out +=
      "# HELP problemgate_tls_handshakes_total TLS handshakes completed on client listeners.\n"
      "# TYPE problemgate_tls_handshakes_total counter\n";
  for (const auto& [l, n] : handshakes_)
    line(out, "problemgate_tls_handshakes_total", "listener", l, {}, {}, n);
  out +=
      "# HELP problemgate_tls_handshakes_resumed_total Of those, resumed sessions (ticket or cache).\n"
      "# TYPE problemgate_tls_handshakes_resumed_total counter\n";
  for (const auto& [l, n] : resumed_)
    line(out, "problemgate_tls_handshakes_resumed_total", "listener", l, {}, {}, n);
  out +=
      "# HELP problemgate_tls_handshake_failures_total Client connections that failed the TLS handshake, "
      "by reason (plain HTTP to a TLS port, TLS to a plain port, timeouts included).\n"
      "# TYPE problemgate_tls_handshake_failures_total counter\n";
  for (const auto& [k, n] : failures_) {
    const auto z = k.find('\0');
    line(out, "problemgate_tls_handshake_failures_total", "listener",
         std::string_view(k).substr(0, z), "reason", std::string_view(k).substr(z + 1), n);
  }
  out +=
      "# HELP problemgate_upstream_tls_failures_total TLS handshakes to upstreams that failed, by reason "
      "(certificate: the upstream's certificate did not verify; protocol: anything else).\n"
      "# TYPE problemgate_upstream_tls_failures_total counter\n";
  for (const auto& [k, n] : upstream_failures_) {
    const auto z = k.find('\0');
    line(out, "problemgate_upstream_tls_failures_total", "upstream",
         std::string_view(k).substr(0, z), "reason", std::string_view(k).substr(z + 1), n);
  }
}

}  // namespace problemgate::obs
