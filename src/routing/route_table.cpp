#include "problemgate/routing/route_table.hpp"

#include <algorithm>

namespace problemgate::routing {

namespace {

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view lower_b) noexcept {
  if (a.size() != lower_b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower_b[i]) return false;
  }
  return true;
}

std::string_view path_of(std::string_view target) noexcept {
  return target.substr(0, target.find('?'));
}

}  // namespace

bool prefix_matches(std::string_view prefix, std::string_view path) noexcept {
  if (!path.starts_with(prefix)) return false;
  return path.size() == prefix.size() || prefix.ends_with('/') || path[prefix.size()] == '/';
}

std::string_view host_without_port(std::string_view host) noexcept {
  if (host.starts_with('[')) {
    const auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  host = host.substr(0, host.find(':'));
  // "example.com." names the same host as "example.com".
  if (host.ends_with('.')) host.remove_suffix(1);
  return host;
}

RouteTable::RouteTable(const std::vector<config::Route>& routes) {
  entries_.reserve(routes.size());
  for (const auto& r : routes) entries_.push_back({r.prefix, r.host, &r});
  // Priority order, so match() is a first-hit scan: longer prefix first, then host-specific
  // before any-host. Stable keeps file order for the (validation-rejected) exact duplicates.
  std::stable_sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
    if (a.prefix.size() != b.prefix.size()) return a.prefix.size() > b.prefix.size();
    return !a.host.empty() && b.host.empty();
  });
}

const config::Route* RouteTable::match(std::string_view host_header,
                                       std::string_view target) const noexcept {
  const std::string_view path = path_of(target);
  const std::string_view host = host_without_port(host_header);
  // A linear scan: route tables are tens of entries, and this touches no heap.
  for (const Entry& e : entries_) {
    if (!prefix_matches(e.prefix, path)) continue;
    if (!e.host.empty() && !iequals(host, e.host)) continue;
    return e.route;
  }
  return nullptr;
}

void strip_prefix(std::string_view prefix, std::string_view target, std::string& out) {
  // A trailing '/' on the prefix belongs to the remainder: "/api/" on "/api/x" leaves "/x".
  if (prefix.ends_with('/')) prefix.remove_suffix(1);
  if (prefix.empty() || !prefix_matches(prefix, path_of(target))) {
    out.append(target);
    return;
  }
  std::string_view rest = target.substr(prefix.size());
  if (!rest.starts_with('/')) out.push_back('/');
  out.append(rest);
}

void append_upstream_target(const config::Route& route, std::string_view target, std::string& out) {
  if (route.strip_prefix)
    strip_prefix(route.prefix, target, out);
  else
    out.append(target);
}

}  // namespace problemgate::routing
