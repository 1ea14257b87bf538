#include "problemgate/upstream/cluster.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace problemgate::upstream {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

std::string label_of(const tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

/// Addresses `name` has in a hosts(5) file ("ADDRESS NAME [ALIAS...]", # comments). `found`
/// false when the name is not in it (the system resolver answers then); false when the file
/// cannot be read.
bool lookup_hosts_file(const std::string& path, const std::string& name,
                       std::vector<net::ip::address>& out, bool& found) {
  std::ifstream in(path);
  found = false;
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::string addr_text, alias;
    if (!(words >> addr_text)) continue;
    boost::system::error_code ec;
    const auto addr = net::ip::make_address(addr_text, ec);
    if (ec) continue;
    while (words >> alias) {
      if (!iequal(alias, name)) continue;
      found = true;
      if (std::find(out.begin(), out.end(), addr) == out.end()) out.push_back(addr);
      break;
    }
  }
  return true;
}

std::string authority_of(const config::UpstreamTarget& t) {
  const bool v6 = t.host.find(':') != std::string::npos;
  return (v6 ? "[" + t.host + "]" : t.host) + ":" + std::to_string(t.port);
}

std::vector<config::UpstreamTarget> targets_of(const config::Upstream& u) {
  if (!u.endpoints.empty()) return u.endpoints;
  return {config::UpstreamTarget{u.url, u.host, u.port, u.https}};
}

}  // namespace

EndpointState::EndpointState(tcp::endpoint a, std::string auth)
    : address(a), label(label_of(a)), authority(std::move(auth)) {}

Cluster::Cluster(config::Upstream settings, std::string hosts_file,
                 std::shared_ptr<boost::asio::ssl::context> tls)
    : settings_(std::move(settings)),
      hosts_file_(std::move(hosts_file)),
      tls_(std::move(tls)),
      endpoints_(std::make_shared<const EndpointList>()) {
  for (const auto& t : targets_of(settings_)) {
    boost::system::error_code ec;
    net::ip::make_address(t.host, ec);
    if (ec) has_names_ = true;
  }
  refresh();
}

std::shared_ptr<const EndpointList> Cluster::endpoints() const {
  std::lock_guard lock(mutex_);
  return endpoints_;
}

bool Cluster::resolve(std::vector<ResolvedAddress>& out, std::string& error) const {
  out.clear();
  net::io_context ioc;  // the synchronous resolver needs one; nothing runs on it
  tcp::resolver resolver(ioc);
  for (const auto& t : targets_of(settings_)) {
    const std::string authority = authority_of(t);
    boost::system::error_code ec;
    const auto literal = net::ip::make_address(t.host, ec);
    if (!ec) {
      out.push_back({tcp::endpoint(literal, t.port), authority});
      continue;
    }
    if (!hosts_file_.empty()) {
      std::vector<net::ip::address> addrs;
      bool found = false;
      if (!lookup_hosts_file(hosts_file_, t.host, addrs, found)) {
        error = "cannot read hosts file " + hosts_file_;
        return false;
      }
      if (found) {
        for (const auto& a : addrs) out.push_back({tcp::endpoint(a, t.port), authority});
        continue;
      }
    }
    const auto results = resolver.resolve(t.host, std::to_string(t.port), ec);
    if (ec || results.empty()) {
      error = "cannot resolve " + t.host + ": " + (ec ? ec.message() : std::string("no address"));
      return false;
    }
    for (const auto& r : results) {
      const auto ep = r.endpoint();
      const bool dup =
          std::any_of(out.begin(), out.end(), [&](const auto& x) { return x.address == ep; });
      if (!dup) out.push_back({ep, authority});
    }
  }
  return true;
}

void Cluster::refresh() {
  std::vector<ResolvedAddress> addrs;
  std::string error;
  if (!resolve(addrs, error)) {
    counters.resolve_failures.fetch_add(1, std::memory_order_relaxed);
    if (!resolve_failing_) {
      resolve_failing_ = true;
      spdlog::warn("upstream {}: {}; keeping the last good endpoint set ({} endpoints)", name(),
                   error, endpoints()->size());
    }
    return;
  }
  if (resolve_failing_) {
    resolve_failing_ = false;
    spdlog::info("upstream {}: resolution works again", name());
  }
  if (set_addresses(addrs)) {
    std::string list;
    for (const auto& a : addrs) list += (list.empty() ? "" : " ") + label_of(a.address);
    spdlog::info("upstream {}: endpoints {}", name(), list);
  }
}

bool Cluster::set_addresses(const std::vector<ResolvedAddress>& addresses) {
  std::lock_guard lock(mutex_);
  const auto& old = *endpoints_;
  const bool same =
      old.size() == addresses.size() &&
      std::equal(old.begin(), old.end(), addresses.begin(),
                 [](const auto& e, const auto& a) { return e->address == a.address; });
  if (same) return false;
  auto next = std::make_shared<EndpointList>();
  for (const auto& a : addresses) {
    auto it = std::find_if(old.begin(), old.end(),
                           [&](const auto& e) { return e->address == a.address; });
    next->push_back(it != old.end() ? *it
                                    : std::make_shared<EndpointState>(a.address, a.authority));
  }
  endpoints_ = std::move(next);
  version_.fetch_add(1, std::memory_order_release);
  return true;
}

bool Cluster::record_failure(EndpointState& e, std::int64_t now_ns) {
  const auto& o = settings_.outlier;
  if (o.consecutive_failures == 0) return false;
  const auto n = e.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n < o.consecutive_failures) return false;
  std::lock_guard lock(mutex_);
  if (e.ejected(now_ns)) return false;  // another worker got there first
  std::size_t ejected = 0;
  for (const auto& x : *endpoints_) ejected += x->ejected(now_ns) ? 1 : 0;
  if ((ejected + 1) * 100 > static_cast<std::size_t>(o.max_ejected_percent) * endpoints_->size()) {
    counters.ejections_refused.fetch_add(1, std::memory_order_relaxed);
    e.consecutive_failures.store(0, std::memory_order_relaxed);
    return false;
  }
  // A streak ends when the endpoint came back and stayed in for the longest ejection time:
  // an endpoint that flaps is ejected longer each time, one that recovered starts over.
  const std::int64_t base = std::chrono::nanoseconds(o.ejection_time).count();
  const std::int64_t cap = std::max(kMaxEjectionNs, base);
  const std::int64_t since = now_ns - e.ejected_until_ns.load(std::memory_order_relaxed);
  if (e.ejections > 0 && since > cap) e.ejections = 0;
  std::int64_t time = base;
  for (std::uint32_t i = 0; i < e.ejections && time < cap; ++i) time *= 2;
  time = std::min(time, cap);
  ++e.ejections;
  e.ejected_until_ns.store(now_ns + time, std::memory_order_relaxed);
  e.consecutive_failures.store(0, std::memory_order_relaxed);
  counters.ejections.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("upstream {}: endpoint {} ejected for {} ms after {} consecutive failures", name(),
               e.label, time / 1'000'000, n);
  return true;
}

void Cluster::record_check(EndpointState& e, bool passed) {
  if (!settings_.health_check) return;
  const auto& hc = *settings_.health_check;
  (passed ? counters.checks_passed : counters.checks_failed)
      .fetch_add(1, std::memory_order_relaxed);
  const bool healthy = e.healthy.load(std::memory_order_relaxed);
  if (passed) {
    e.check_failures = 0;
    if (!healthy && ++e.check_passes >= hc.healthy_threshold) {
      e.check_passes = 0;
      e.healthy.store(true, std::memory_order_relaxed);
      spdlog::info("upstream {}: endpoint {} is healthy again", name(), e.label);
    }
  } else {
    e.check_passes = 0;
    if (healthy && ++e.check_failures >= hc.unhealthy_threshold) {
      e.check_failures = 0;
      e.healthy.store(false, std::memory_order_relaxed);
      spdlog::warn("upstream {}: endpoint {} failed {} health checks: unhealthy", name(), e.label,
                   hc.unhealthy_threshold);
    }
  }
}

std::size_t Cluster::unavailable(std::int64_t now_ns, bool& all) const {
  const auto set = endpoints();
  std::size_t n = 0;
  for (const auto& e : *set) n += e->available(now_ns) ? 0 : 1;
  all = !set->empty() && n == set->size();
  return n;
}

}  // namespace problemgate::upstream
