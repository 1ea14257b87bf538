#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "problemgate/config/config.hpp"

namespace problemgate::routing {

/// Picks the route for a request. Longest prefix wins; on equal prefixes a route for the
/// request's host beats an any-host route. A prefix matches on path-segment boundaries:
/// `/api` matches `/api`, `/api/x` and `/api?q` but not `/apix`; a prefix ending in `/`
/// matches anything under it; `/` matches every path.
///
/// Holds pointers into the `routes` vector it was built from, which must outlive it (the
/// immutable Config snapshot owns both). Immutable after construction, so safe to share
/// between threads; match() does not allocate.
class RouteTable {
 public:
  explicit RouteTable(const std::vector<config::Route>& routes);

  /// `host_header` is the request's Host as sent (case and `:port` are ignored); `target` is
  /// the origin-form request target (only the part before `?` is compared). nullptr when no
  /// route matches (the proxy answers 404 route_not_found).
  const config::Route* match(std::string_view host_header, std::string_view target) const noexcept;

 private:
  struct Entry {
    std::string_view prefix;
    std::string_view host;  // lowercase (config guarantees it); empty = any host
    const config::Route* route;
  };
  std::vector<Entry> entries_;  // in match priority order: the first that matches wins
};

/// Whether `prefix` matches `path` (no query) under the segment-boundary rule above.
bool prefix_matches(std::string_view prefix, std::string_view path) noexcept;

/// The host part of a Host header, without `:port` (keeps `[v6]` brackets) or a trailing dot.
std::string_view host_without_port(std::string_view host_header) noexcept;

/// Appends to `out` the target with `prefix` removed, keeping the query; the result always
/// starts with `/` (`/api/x?q` -> `/x?q`, `/api` -> `/`, `/api?q` -> `/?q`). A target that does
/// not start with `prefix` is appended unchanged.
void strip_prefix(std::string_view prefix, std::string_view target, std::string& out);

/// Appends the target to send upstream for `route`: stripped when `route.strip_prefix`, else
/// as received.
void append_upstream_target(const config::Route& route, std::string_view target, std::string& out);

}  // namespace problemgate::routing
