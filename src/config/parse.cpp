// One parse_<struct>(const Json&, Path) per config struct (userver style). Each reports problems
// and leaves the default in place, so one bad value doesn't hide the next.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "config/parser.hpp"
#include "problemgate/core/request_target.hpp"
#include "problemgate/problem/detail_pattern.hpp"

namespace problemgate::config::detail {

/// True when `prefix` is already in the form request paths are normalized to; else `normal`
/// is that form (empty when the prefix has none: a bad escape, or a ".." above the root).
bool is_normal_path(const std::string& prefix, std::string& normal) {
  bool escaped = false;
  if (core::normalize_path(prefix, normal, escaped) != core::PathVerdict::ok) {
    normal.clear();
    return false;
  }
  return normal == prefix;
}

/// The content of admin.token_file, trimmed, or nullopt with `error` saying why not. Only a
/// regular file (a Kubernetes Secret's symlink is followed), read up to a cap, so a path like
/// /dev/zero can't hang or exhaust a load.
std::optional<std::string> read_admin_token(const std::string& path, std::string& error) {
  constexpr std::size_t kMaxBytes = 4096;
  constexpr std::size_t kMinChars = 16;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    error = ec ? "cannot open: " + ec.message() : "not a regular file";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = std::string("cannot open: ") + std::strerror(errno);
    return std::nullopt;
  }
  std::string text(kMaxBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    error = "cannot read";
    return std::nullopt;
  }
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxBytes) {
    error = "larger than " + std::to_string(kMaxBytes) + " bytes: expected one token";
    return std::nullopt;
  }
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    error = "is empty: expected a bearer token (e.g. the output of `openssl rand -hex 32`)";
    return std::nullopt;
  }
  text = text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
  for (const char c : text) {
    if (c < 0x21 || c > 0x7e) {
      error =
          "the token must be one word of visible ASCII characters (no spaces or line breaks inside)";
      return std::nullopt;
    }
  }
  if (text.size() < kMinChars) {
    error = "the token has " + std::to_string(text.size()) + " characters; use at least " +
            std::to_string(kMinChars) + " (e.g. `openssl rand -hex 32`)";
    return std::nullopt;
  }
  return text;
}

/// What a bare duration most likely meant: a small number is seconds (`window: 60`); from 1000
/// on it was most likely written as milliseconds (how bare numbers used to be read), shown in
/// the largest unit that keeps it exact.
std::string suggest_duration(std::uint64_t n) {
  if (n < 1000) return std::to_string(n) + "s";
  if (n % 3'600'000 == 0) return std::to_string(n / 3'600'000) + "h";
  if (n % 60'000 == 0) return std::to_string(n / 60'000) + "m";
  if (n % 1000 == 0) return std::to_string(n / 1000) + "s";
  return std::to_string(n) + "ms";
}

std::string describe(const Json& j) {
  if (j.is_string()) return "\"" + j.get<std::string>() + "\"";
  if (j.is_object()) return "a mapping";
  if (j.is_array()) return "a list";
  return j.dump();
}

void Parser::listen(const Json& j, const Path& p, std::vector<Endpoint>& out) {
  std::vector<Endpoint> result;
  auto address = [&](const Json& item, const Path& ip) -> std::optional<Endpoint> {
    std::string text, error;
    if (!string(item, ip, text)) return std::nullopt;
    if (auto ep = parse_endpoint(text, error)) return ep;
    diag_.error(ip, "\"" + text + "\": " + error);
    return std::nullopt;
  };
  auto one = [&](const Json& item, const Path& ip) {
    if (!item.is_object()) {
      if (auto ep = address(item, ip)) result.push_back(std::move(*ep));
      return;
    }
    if (!object(item, ip, {"address", "tls"})) return;
    if (!item.contains("address")) diag_.error(ip, "missing address (HOST:PORT)");
    std::optional<Endpoint> ep;
    field(item, ip, "address", [&](auto& v, auto& vp) { ep = address(v, vp); });
    ListenTls tls;
    bool tls_ok = false;
    field(item, ip, "tls", [&](auto& v, auto& vp) { tls_ok = listen_tls(v, vp, tls); });
    if (ep && tls_ok) ep->tls = std::move(tls);
    if (ep) result.push_back(std::move(*ep));
  };
  if (j.is_array()) {
    if (j.empty()) diag_.error(p, "expected at least one address");
    for (std::size_t i = 0; i < j.size(); ++i) one(j[i], p / i);
  } else {
    one(j, p);
  }
  if (!result.empty()) out = std::move(result);
}

bool Parser::listen_tls(const Json& j, const Path& p, ListenTls& out) {
  if (!object(
          j, p,
          {"cert", "key", "certificates", "min_version", "alpn", "client_ca", "handshake_timeout"}))
    return false;
  const std::size_t errors_before = diag_.count();
  CertKey first;
  if (!j.contains("cert") || j["cert"].is_null())
    diag_.error(p, "missing cert (a PEM certificate chain, leaf first)");
  if (!j.contains("key") || j["key"].is_null())
    diag_.error(p, "missing key (the PEM private key of cert)");
  field(j, p, "cert", [&](auto& v, auto& vp) { pem_path(v, vp, first.cert); });
  field(j, p, "key", [&](auto& v, auto& vp) { pem_path(v, vp, first.key); });
  out.certificates = {first};
  field(j, p, "certificates", [&](auto& v, auto& vp) {
    if (!v.is_array()) {
      diag_.error(vp, "expected a list of {cert, key}, got " + describe(v));
      return;
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      const Path ip = vp / i;
      if (!object(v[i], ip, {"cert", "key"})) continue;
      CertKey ck;
      if (!v[i].contains("cert")) diag_.error(ip, "missing cert");
      if (!v[i].contains("key")) diag_.error(ip, "missing key");
      field(v[i], ip, "cert", [&](auto& w, auto& wp) { pem_path(w, wp, ck.cert); });
      field(v[i], ip, "key", [&](auto& w, auto& wp) { pem_path(w, wp, ck.key); });
      out.certificates.push_back(std::move(ck));
    }
  });
  field(j, p, "min_version", [&](auto& v, auto& vp) {
    using V = ListenTls::Version;
    // YAML reads an unquoted 1.2 as a number: both spellings mean the version.
    std::string text = v.is_number()   ? (v.template get<double>() == 1.2   ? "1.2"
                                          : v.template get<double>() == 1.3 ? "1.3"
                                                                            : v.dump())
                       : v.is_string() ? v.template get<std::string>()
                                       : describe(v);
    if (text == "1.2")
      out.min_version = V::tls1_2;
    else if (text == "1.3")
      out.min_version = V::tls1_3;
    else
      diag_.error(vp, "expected \"1.2\" or \"1.3\", got " + describe(v));
  });
  field(j, p, "alpn", [&](auto& v, auto& vp) {
    if (!v.is_array()) {
      diag_.error(vp, "expected a list of protocol names like [http/1.1], got " + describe(v));
      return;
    }
    out.alpn.clear();
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::string name;
      if (!string(v[i], vp / i, name)) continue;
      if (name != "http/1.1" && name != "http/1.0")
        diag_.error(vp / i, "\"" + name + "\": only http/1.1 and http/1.0 are served");
      else
        out.alpn.push_back(std::move(name));
    }
  });
  field(j, p, "client_ca", [&](auto& v, auto& vp) { pem_path(v, vp, out.client_ca); });
  field(j, p, "handshake_timeout",
        [&](auto& v, auto& vp) { duration(v, vp, out.handshake_timeout); });
  return diag_.count() == errors_before;
}

bool Parser::upstream_tls(const Json& j, const Path& p, UpstreamTls& out) {
  if (!object(j, p, {"ca_file", "server_name", "verify", "cert", "key"})) return false;
  field(j, p, "ca_file", [&](auto& v, auto& vp) { pem_path(v, vp, out.ca_file); });
  field(j, p, "server_name", [&](auto& v, auto& vp) {
    if (string(v, vp, out.server_name) &&
        (out.server_name.empty() || !is_valid_host(out.server_name)))
      diag_.error(vp, "expected a host name like api.example.com, got \"" + out.server_name + "\"");
  });
  field(j, p, "verify", [&](auto& v, auto& vp) {
    if (!v.is_boolean())
      diag_.error(vp, "expected true or false, got " + describe(v));
    else
      out.verify = v.template get<bool>();
  });
  field(j, p, "cert", [&](auto& v, auto& vp) { pem_path(v, vp, out.cert); });
  field(j, p, "key", [&](auto& v, auto& vp) { pem_path(v, vp, out.key); });
  if (out.cert.empty() != out.key.empty())
    diag_.error(p, out.cert.empty() ? "key without cert: a client certificate needs both"
                                    : "cert without key: a client certificate needs both");
  return true;
}

void Parser::upstream(const Json& j, const Path& p, Upstream& out) {
  // Shorthand `name: http://host:port` for an upstream that keeps every default.
  if (j.is_string()) {
    url(j, p, out);
    return;
  }
  if (!object(
          j, p,
          {"url", "endpoints", "resolve", "lb", "connect_timeout", "timeout", "idle_timeout",
           "reuse_check_after", "max_connections", "health_check", "outlier", "retries", "tls"}))
    return;
  const bool has_url = j.contains("url") && !j["url"].is_null();
  const bool has_endpoints = j.contains("endpoints") && !j["endpoints"].is_null();
  if (!has_url && !has_endpoints) diag_.error(p, "missing url (or endpoints)");
  if (has_url && has_endpoints) diag_.error(p, "set url or endpoints, not both");
  field(j, p, "url", [&](auto& v, auto& vp) { url(v, vp, out); });
  field(j, p, "endpoints", [&](auto& v, auto& vp) {
    if (!v.is_array() || v.empty()) {
      diag_.error(vp, "expected a non-empty list of http(s)://HOST:PORT URLs, got " + describe(v));
      return;
    }
    std::vector<UpstreamTarget> targets;
    for (std::size_t i = 0; i < v.size(); ++i) {
      UpstreamTarget t;
      if (!target(v[i], vp / i, t)) continue;
      if (std::find(targets.begin(), targets.end(), t) != targets.end()) {
        diag_.error(vp / i, "\"" + t.url + "\" is listed twice");
        continue;
      }
      if (!targets.empty() && t.https != targets.front().https) {
        diag_.error(vp / i,
                    "\"" + t.url + "\": mixes http:// and https:// endpoints in one upstream");
        continue;
      }
      targets.push_back(std::move(t));
    }
    if (!targets.empty()) {
      out.url = targets.front().url;
      out.host = targets.front().host;
      out.port = targets.front().port;
      out.https = targets.front().https;
      out.endpoints = std::move(targets);
    }
  });
  field(j, p, "resolve", [&](auto& v, auto& vp) { duration(v, vp, out.resolve, true); });
  field(j, p, "lb", [&](auto& v, auto& vp) {
    using L = Upstream::Lb;
    choice<L>(v, vp, out.lb,
              {{"round_robin", L::round_robin}, {"least_request", L::least_request}});
  });
  field(j, p, "connect_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.connect_timeout); });
  field(j, p, "timeout", [&](auto& v, auto& vp) { duration(v, vp, out.timeout); });
  field(j, p, "idle_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.idle_timeout); });
  field(j, p, "reuse_check_after",
        [&](auto& v, auto& vp) { duration(v, vp, out.reuse_check_after, true); });
  field(j, p, "max_connections", [&](auto& v, auto& vp) {
    count(v, vp, out.max_connections, 1, std::numeric_limits<std::uint32_t>::max());
  });
  field(j, p, "health_check", [&](auto& v, auto& vp) {
    HealthCheck hc;
    if (health_check(v, vp, hc)) out.health_check = std::move(hc);
  });
  field(j, p, "outlier", [&](auto& v, auto& vp) {
    if (!object(v, vp, {"consecutive_failures", "ejection_time", "max_ejected_percent"})) return;
    field(v, vp, "consecutive_failures",
          [&](auto& w, auto& wp) { count(w, wp, out.outlier.consecutive_failures, 0, 1000); });
    field(v, vp, "ejection_time",
          [&](auto& w, auto& wp) { duration(w, wp, out.outlier.ejection_time); });
    field(v, vp, "max_ejected_percent",
          [&](auto& w, auto& wp) { count(w, wp, out.outlier.max_ejected_percent, 0, 100); });
  });
  field(j, p, "retries", [&](auto& v, auto& vp) { retries(v, vp, out.retries); });
  field(j, p, "tls", [&](auto& v, auto& vp) {
    if (upstream_tls(v, vp, out.tls) && !out.https && (has_url || has_endpoints))
      diag_.error(vp, "tls settings apply to https:// upstreams; the URL is http://");
  });
}

bool Parser::target(const Json& j, const Path& p, UpstreamTarget& out) {
  std::string text, error;
  if (!string(j, p, text)) return false;
  auto u = parse_http_url(text, error);
  if (!u) {
    diag_.error(p, "\"" + text + "\": " + error);
    return false;
  }
  out.url = text;
  out.host = u->host;
  out.port = u->port;
  out.https = u->https;
  return true;
}

void Parser::url(const Json& j, const Path& p, Upstream& out) {
  UpstreamTarget t;
  if (!target(j, p, t)) return;
  out.url = t.url;
  out.host = t.host;
  out.port = t.port;
  out.https = t.https;
  out.endpoints = {std::move(t)};
}

void Parser::upstreams(const Json& j, const Path& p, std::vector<Upstream>& out) {
  if (!j.is_object()) {
    diag_.error(p, "expected a mapping of name -> {url, ...}, got " + describe(j));
    return;
  }
  for (const auto& [name, value] : j.items()) {
    const Path up = p / name;
    auto name_char = [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_';
    };
    if (name.empty() || !std::all_of(name.begin(), name.end(), name_char)) {
      diag_.error(up, "upstream names may use letters, digits and -._ only, got \"" + name + "\"");
    }
    Upstream u;
    u.name = name;
    if (value.is_null())
      diag_.error(up, "missing url");
    else
      upstream(value, up, u);
    // Kept even when broken so routes naming it don't also report "unknown upstream".
    out.push_back(std::move(u));
  }
}

void Parser::config(const Json& root, Config& out, std::vector<Path>& route_paths) {
  if (root.is_null()) return;  // an empty file: every default
  const Path p;
  if (!root.is_object()) {
    diag_.error(p, "expected a mapping of settings at the top level, got " + describe(root));
    return;
  }
  object(root, p,
         {"listen", "threads", "admin", "drain", "limits", "request_id", "trusted_proxies",
          "problem", "rate_limit_headers", "rate_limit", "rate_limit_store", "access_log",
          "telemetry", "upstreams", "routes"});
  field(root, p, "listen", [&](auto& v, auto& vp) { listen(v, vp, out.listen); });
  field(root, p, "threads", [&](auto& v, auto& vp) { threads(v, vp, out.threads); });
  field(root, p, "admin", [&](auto& v, auto& vp) { admin(v, vp, out.admin); });
  field(root, p, "drain", [&](const Json& v, const Path& vp) {
    if (!object(v, vp, {"accept_for"})) return;
    field(v, vp, "accept_for",
          [&](auto& av, auto& ap) { duration(av, ap, out.drain.accept_for, true); });
  });
  field(root, p, "limits", [&](auto& v, auto& vp) { limits(v, vp, out.limits); });
  field(root, p, "request_id", [&](auto& v, auto& vp) { request_id(v, vp, out.request_id); });
  field(root, p, "trusted_proxies",
        [&](auto& v, auto& vp) { trusted_proxies(v, vp, out.trusted_proxies); });
  field(root, p, "problem", [&](auto& v, auto& vp) { problem_options(v, vp, out.problem); });
  field(root, p, "rate_limit_headers",
        [&](auto& v, auto& vp) { rate_limit_headers(v, vp, out.rate_limit_headers); });
  // Before routes: a route without its own policy starts from this one.
  field(root, p, "rate_limit", [&](auto& v, auto& vp) { rate_limit(v, vp, out.rate_limit); });
  field(root, p, "rate_limit_store",
        [&](auto& v, auto& vp) { rate_limit_store(v, vp, out.rate_limit_store); });
  field(root, p, "access_log", [&](auto& v, auto& vp) { on_off(v, vp, out.access_log); });
  field(root, p, "telemetry", [&](auto& v, auto& vp) { telemetry(v, vp, out.telemetry); });
  field(root, p, "upstreams", [&](auto& v, auto& vp) { upstreams(v, vp, out.upstreams); });
  field(root, p, "routes", [&](const Json& v, const Path& vp) {
    if (!v.is_array()) {
      diag_.error(vp, "expected a list of routes, got " + describe(v));
      return;
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      Route r;
      if (!route(v[i], vp / i, r, out.rate_limit)) continue;
      out.routes.push_back(std::move(r));
      route_paths.push_back(vp / i);
    }
  });
}

void parse_config(const Json& root, Config& out, std::vector<Path>& route_paths, Diagnostics& diag,
                  std::vector<KeySet>* key_sets) {
  Parser(diag, key_sets).config(root, out, route_paths);
}

}  // namespace problemgate::config::detail
