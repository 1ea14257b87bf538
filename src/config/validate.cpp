// Cross-field rules, and the flags that are applied before them.
#include <algorithm>
#include <map>

#include "config/internal.hpp"

namespace problemgate::config::detail {

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

/// 127.0.0.0/8 or ::1 (also IPv4-mapped), as a literal: a name is not trusted to resolve there.
bool is_loopback(const std::string& host) {
  const auto ip = core::parse_ip(host);
  if (!ip) return false;
  const auto& a = *ip;
  const bool v4_mapped = std::all_of(a.begin(), a.begin() + 10, [](auto b) { return b == 0; }) &&
                         a[10] == 0xff && a[11] == 0xff;
  if (v4_mapped) return a[12] == 127;
  return std::all_of(a.begin(), a.begin() + 15, [](auto b) { return b == 0; }) && a[15] == 1;
}

/// Safe by default: the controls (GET /config, POST /reload) listen on loopback only, unless a
/// bearer token guards them.
void validate_admin(const Admin& admin, Diagnostics& diag) {
  const auto& l = admin.listen;
  const auto& p = admin.probes_listen;
  if (l && p && l->port != 0 && l->port == p->port && l->host == p->host) {
    diag.error(Path{} / "admin" / "probes_listen", p->to_string() + " is also admin.listen");
  }
  if (l && !is_loopback(l->host) && admin.token.empty()) {
    diag.error(
        Path{} / "admin" / "listen",
        l->to_string() +
            " is not a loopback address, so GET /config and POST /reload would be open to the network: "
            "set admin.token_file (a file holding a bearer token), or keep admin.listen on 127.0.0.1 or "
            "[::1] and expose only /healthz, /readyz and /metrics with admin.probes_listen (--probes)");
  }
}

std::string route_label(const Route& r, const Path& p) { return p.str() + " (\"" + r.name + "\")"; }

}  // namespace

std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string_view best;
  std::size_t best_distance = 3;  // a typo is at most two edits away
  for (auto c : candidates) {
    const std::size_t d = edit_distance(word, c);
    // ...and less than half the word, so "b" doesn't suggest "a".
    if (d < best_distance && d * 2 < std::max(word.size(), c.size())) {
      best_distance = d;
      best = c;
    }
  }
  return best.empty() ? std::string{} : " (did you mean \"" + std::string(best) + "\"?)";
}

void imply_upstreams(Config& cfg) {
  if (cfg.upstreams.size() != 1) return;
  for (auto& r : cfg.routes) {
    if (r.upstream.empty()) r.upstream = cfg.upstreams.front().name;
  }
}

void apply_overrides(const Overrides& o, Config& cfg, std::vector<Path>& route_paths,
                     Diagnostics& diag) {
  if (o.listen) {
    // A comma-separated list, so PROBLEMGATE_LISTEN can name several addresses too.
    std::vector<Endpoint> listen;
    std::string_view rest = *o.listen;
    while (true) {
      const auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      std::string error;
      if (auto ep = parse_endpoint(item, error))
        listen.push_back(*ep);
      else
        diag.error("--listen \"" + std::string(item) + "\": " + error);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    if (!listen.empty()) cfg.listen = std::move(listen);
  }
  if (o.upstream) {
    std::string error;
    if (auto url = parse_http_url(*o.upstream, error)) {
      auto it = std::find_if(cfg.upstreams.begin(), cfg.upstreams.end(),
                             [](auto& u) { return u.name == "default"; });
      if (it == cfg.upstreams.end()) {
        cfg.upstreams.push_back(Upstream{});
        it = std::prev(cfg.upstreams.end());
        it->name = "default";
      }
      // Only the address is replaced: a file's tuned timeouts for "default" still apply.
      it->url = *o.upstream;
      it->host = url->host;
      it->port = url->port;
      it->https = url->https;
      it->endpoints = {UpstreamTarget{*o.upstream, url->host, url->port, url->https}};
      if (cfg.routes.empty()) {
        Route r;
        r.name = "default";
        r.prefix = "/";
        r.upstream = "default";
        r.rate_limit = cfg.rate_limit;
        cfg.routes.push_back(std::move(r));
        route_paths.push_back(Path{} / "routes" / 0);
      }
    } else {
      diag.error("--upstream \"" + *o.upstream + "\": " + error);
    }
  }
  // --admin / --probes: HOST:PORT or off, replacing admin.listen / admin.probes_listen.
  auto endpoint_or_off = [&](const std::string& text, const char* flag,
                             std::optional<Endpoint>& out) {
    if (text == "off") {
      out.reset();
      return;
    }
    std::string error;
    if (auto ep = parse_endpoint(text, error))
      out = *ep;
    else
      diag.error(std::string(flag) + " \"" + text + "\": " + error + " (or off)");
  };
  if (o.admin) endpoint_or_off(*o.admin, "--admin", cfg.admin.listen);
  if (o.probes) endpoint_or_off(*o.probes, "--probes", cfg.admin.probes_listen);
  if (o.threads) {
    if (*o.threads > 1024)
      diag.error("--threads " + std::to_string(*o.threads) + ": expected 0 (auto) to 1024");
    else
      cfg.threads = *o.threads;
  }
}

void validate(Config& cfg, const std::vector<Path>& route_paths, Diagnostics& diag) {
  // Port 0 means "any free port", so only fixed ports can collide.
  auto same = [](const Endpoint& a, const Endpoint& b) {
    return a.port != 0 && a.port == b.port && a.host == b.host;
  };
  for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (same(cfg.listen[i], cfg.listen[j])) {
        diag.error(Path{} / "listen" / i, "duplicate address " + cfg.listen[i].to_string());
      }
    }
    if (cfg.admin.listen && same(*cfg.admin.listen, cfg.listen[i])) {
      diag.error(Path{} / "admin" / "listen", cfg.admin.listen->to_string() + " is also in listen");
    }
    if (cfg.admin.probes_listen && same(*cfg.admin.probes_listen, cfg.listen[i])) {
      diag.error(Path{} / "admin" / "probes_listen",
                 cfg.admin.probes_listen->to_string() + " is also in listen");
    }
  }
  validate_admin(cfg.admin, diag);

  if (cfg.upstreams.empty()) {
    diag.error("no upstream configured: pass --upstream URL or a config file");
    return;  // every route would also be "unknown upstream": say it once
  }
  if (cfg.routes.empty()) {
    diag.error(Path{} / "routes",
               "no routes configured: add one (match: {prefix: /}) or pass --upstream URL");
  }

  std::vector<std::string_view> upstream_names;
  for (const auto& u : cfg.upstreams) upstream_names.push_back(u.name);

  std::map<std::string, std::size_t> by_name;
  std::map<std::pair<std::string, std::string>, std::size_t> by_match;
  for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
    Route& r = cfg.routes[i];
    const Path& p = route_paths.at(i);

    if (r.upstream.empty()) {
      diag.error(p / "upstream",
                 "missing upstream (required when more than one upstream is defined)");
    } else {
      auto it = std::find(upstream_names.begin(), upstream_names.end(), r.upstream);
      if (it == upstream_names.end()) {
        diag.error(p / "upstream", "unknown upstream \"" + r.upstream + "\"" +
                                       did_you_mean(r.upstream, upstream_names));
      } else {
        r.upstream_index = static_cast<std::size_t>(it - upstream_names.begin());
      }
    }

    if (auto [it, fresh] = by_name.emplace(r.name, i); !fresh) {
      diag.error(p / "name", "duplicate route name \"" + r.name + "\" (also " +
                                 route_paths.at(it->second).str() + ")");
    }
    if (auto [it, fresh] = by_match.emplace(std::pair{r.prefix, r.host}, i); !fresh) {
      const std::string where = r.host.empty() ? "any host" : "host \"" + r.host + "\"";
      diag.error(p / "match", "overlapping routes: same prefix \"" + r.prefix + "\" and " + where +
                                  " as " +
                                  route_label(cfg.routes[it->second], route_paths.at(it->second)));
    }
  }
}

}  // namespace problemgate::config::detail
