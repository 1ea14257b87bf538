// Routes, their rules, rate limits and problem options: the
// Parser's sections for them (parser.hpp).
#include <charconv>
#include <limits>

#include "config/parser.hpp"
#include "problemgate/core/request_target.hpp"
#include "problemgate/problem/detail_pattern.hpp"

namespace problemgate::config::detail {

void Parser::problem_options(const Json& j, const Path& p, problem::Options& out) {
  if (!object(j, p,
              {"type_base", "expose_5xx_detail", "max_error_body", "catalog", "legacy_codes"}))
    return;
  field(j, p, "type_base", [&](const Json& v, const Path& vp) {
    std::string s;
    if (string(v, vp, s)) out.type_base = s;
  });
  field(j, p, "expose_5xx_detail",
        [&](auto& v, auto& vp) { boolean(v, vp, out.expose_5xx_detail); });
  field(j, p, "max_error_body",
        [&](auto& v, auto& vp) { size(v, vp, out.max_error_body, 1, kMaxErrorBodyCap); });
  field(j, p, "catalog", [&](const Json& v, const Path& vp) {
    if (!v.is_object()) {
      diag_.error(vp, "expected a mapping of status -> {code, title}, got " + describe(v));
      return;
    }
    for (const auto& [key, entry] : v.items()) {
      const Path ep = vp / key;
      int status = 0;
      auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), status);
      if (ec != std::errc{} || ptr != key.data() + key.size() || status < 400 || status > 599) {
        diag_.error(ep, "catalog keys are HTTP statuses from 400 to 599, got \"" + key + "\"");
        continue;
      }
      if (!object(entry, ep, {"code", "title"})) continue;
      problem::CatalogEntry row;
      bool ok = true;
      if (!entry.contains("code")) diag_.error(ep, "missing code"), ok = false;
      if (!entry.contains("title")) diag_.error(ep, "missing title"), ok = false;
      field(entry, ep, "code", [&](auto& c, auto& cp) { ok &= snake_code(c, cp, row.code); });
      field(entry, ep, "title", [&](auto& t, auto& tp) { ok &= string(t, tp, row.title); });
      if (ok) out.catalog[status] = std::move(row);
    }
  });
  field(j, p, "legacy_codes", [&](const Json& v, const Path& vp) {
    if (!v.is_object()) {
      diag_.error(vp, "expected a mapping of upstream code -> {code, subcode}, got " + describe(v));
      return;
    }
    for (const auto& [key, entry] : v.items()) {
      const Path ep = vp / key;
      if (!object(entry, ep, {"code", "subcode"})) continue;
      problem::LegacyCode row;
      bool ok = true;
      field(entry, ep, "code", [&](auto& c, auto& cp) { ok &= snake_code(c, cp, row.code); });
      field(entry, ep, "subcode", [&](auto& c, auto& cp) { ok &= snake_code(c, cp, row.subcode); });
      if (ok && row.code.empty() && row.subcode.empty()) {
        diag_.error(ep, "expected code, subcode or both");
        ok = false;
      }
      if (ok) out.legacy_codes[key] = std::move(row);
    }
  });
}

void Parser::rate_limit_headers(const Json& j, const Path& p, RateLimitHeaders& out) {
  using F = RateLimitHeaders::Format;
  using R = RateLimitHeaders::Reset;
  if (!object(j, p, {"format", "reset"})) return;
  field(j, p, "format", [&](auto& v, auto& vp) {
    choice<F>(v, vp, out.format,
              {{"x-ratelimit", F::x_ratelimit}, {"ietf", F::ietf}, {"both", F::both}});
  });
  field(j, p, "reset", [&](auto& v, auto& vp) {
    choice<R>(v, vp, out.reset, {{"epoch", R::epoch}, {"delta", R::delta}});
  });
}

void Parser::rate_limit_store(const Json& j, const Path& p, RateLimitStore& out) {
  using T = RateLimitStore::Type;
  using E = RateLimitStore::OnError;
  if (!object(j, p, {"type", "url", "timeout", "on_error", "key_prefix", "pool_size"})) return;
  field(j, p, "type", [&](auto& v, auto& vp) {
    choice<T>(v, vp, out.type, {{"local", T::local}, {"redis", T::redis}});
  });
  field(j, p, "url", [&](const Json& v, const Path& vp) {
    std::string text;
    if (!string(v, vp, text)) return;
    std::string error;
    auto u = parse_redis_url(text, error);
    if (!u) {
      diag_.error(vp, error);
      return;
    }
    out.url = text;
    out.host = u->host;
    out.port = u->port;
    out.db = u->db;
    out.username = u->username;
    out.password = u->password;
  });
  // Up to 10 s: a check holds its request that long when Redis stalls.
  field(j, p, "timeout", [&](auto& v, auto& vp) {
    Duration d{};
    if (!duration(v, vp, d)) return;
    if (d > Duration{10'000})
      diag_.error(vp, "must be at most 10s (a stalled Redis holds each limited request this long)");
    else
      out.timeout = d;
  });
  field(j, p, "on_error", [&](auto& v, auto& vp) {
    choice<E>(v, vp, out.on_error, {{"allow", E::allow}, {"deny", E::deny}});
  });
  field(j, p, "key_prefix", [&](const Json& v, const Path& vp) {
    // "" is a valid prefix (keys start at the hash tag), so not string().
    if (!v.is_string())
      diag_.error(vp, "expected a string, got " + describe(v));
    else if (v.get_ref<const std::string&>().size() > 256)
      diag_.error(vp, "must be at most 256 bytes");
    else
      out.key_prefix = v.get<std::string>();
  });
  field(j, p, "pool_size", [&](auto& v, auto& vp) { count(v, vp, out.pool_size, 1, 64); });
}

bool Parser::rate_limit(const Json& j, const Path& p, std::optional<RateLimitPolicy>& out) {
  if ((j.is_string() && j.get_ref<const std::string&>() == "off") ||
      (j.is_boolean() && !j.get<bool>())) {
    out.reset();
    return true;
  }
  if (!j.is_object()) {
    diag_.error(p, "expected off or {limit, window, key, burst}, got " + describe(j));
    return false;
  }
  if (!object(j, p, {"limit", "window", "key", "burst"})) return false;
  RateLimitPolicy policy;
  bool ok = true;
  if (!j.contains("limit") || j["limit"].is_null()) {
    diag_.error(p, "missing limit");
    ok = false;
  }
  field(j, p, "limit", [&](auto& v, auto& vp) {
    ok &= count(v, vp, policy.limit, 1, std::numeric_limits<std::uint64_t>::max());
  });
  field(j, p, "window", [&](auto& v, auto& vp) { ok &= duration(v, vp, policy.window); });
  field(j, p, "burst", [&](auto& v, auto& vp) {
    ok &= count(v, vp, policy.burst, 0, std::numeric_limits<std::uint64_t>::max());
  });
  field(j, p, "key", [&](const Json& v, const Path& vp) {
    std::string k;
    if (!string(v, vp, k)) {
      ok = false;
    } else if (k == "client_ip") {
      policy.key = RateLimitPolicy::Key::client_ip;
    } else if (k == "route") {
      policy.key = RateLimitPolicy::Key::route;
    } else if (k.starts_with("header:") && is_token(k.substr(7))) {
      policy.key = RateLimitPolicy::Key::header;
      policy.header_name = k.substr(7);
    } else {
      diag_.error(vp, "expected client_ip, route or header:NAME, got \"" + k + "\"");
      ok = false;
    }
  });
  if (ok) out = std::move(policy);
  return ok;
}

void Parser::rule(const Json& j, const Path& p, problem::Rule& out) {
  if (!object(j, p, {"when", "set"})) return;
  const Json* when = j.contains("when") ? &j["when"] : nullptr;
  const Json* set = j.contains("set") ? &j["set"] : nullptr;
  if (when == nullptr || when->is_null() || (when->is_object() && when->empty())) {
    diag_.error(
        p / "when",
        "a rule needs at least one condition (status, dialect, upstream_code, detail_matches)");
  } else if (object(*when, p / "when", {"status", "dialect", "upstream_code", "detail_matches"})) {
    rule_when(*when, p / "when", out.when);
  }
  if (set == nullptr || set->is_null() || (set->is_object() && set->empty())) {
    diag_.error(p / "set",
                "a rule needs at least one field to set (code, subcode, title, detail, type)");
  } else if (object(*set, p / "set", {"code", "subcode", "title", "detail", "type"})) {
    const Path sp = p / "set";
    auto str = [&](std::string_view key, std::optional<std::string>& dst, bool snake) {
      field(*set, sp, key, [&](const Json& v, const Path& vp) {
        std::string s;
        if (snake ? snake_code(v, vp, s) : string(v, vp, s)) dst = std::move(s);
      });
    };
    str("code", out.set.code, true);
    str("subcode", out.set.subcode, true);
    str("title", out.set.title, false);
    str("detail", out.set.detail, false);
    str("type", out.set.type, false);
  }
}

void Parser::rule_when(const Json& j, const Path& p, problem::Rule::When& out) {
  field(j, p, "status", [&](const Json& v, const Path& vp) {
    if (v.is_number_unsigned() && v.get<std::uint64_t>() >= 400 && v.get<std::uint64_t>() <= 599) {
      out.status = static_cast<int>(v.get<std::uint64_t>());
      return;
    }
    if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      if (s.size() == 3 && (s[0] == '4' || s[0] == '5') && (s[1] == 'x' || s[1] == 'X') &&
          (s[2] == 'x' || s[2] == 'X')) {
        out.status_class = s[0] - '0';
        return;
      }
    }
    diag_.error(vp, "expected a status from 400 to 599, 4xx or 5xx, got " + describe(v));
  });
  field(j, p, "dialect", [&](const Json& v, const Path& vp) {
    std::string name;
    if (!string(v, vp, name)) return;
    if (auto d = problem::parse_dialect(name))
      out.dialect = *d;
    else
      diag_.error(vp, "unknown dialect \"" + name + "\"");
  });
  field(j, p, "upstream_code", [&](const Json& v, const Path& vp) {
    std::string s;
    if (string(v, vp, s)) out.upstream_code = std::move(s);
  });
  field(j, p, "detail_matches", [&](const Json& v, const Path& vp) {
    std::string pattern;
    if (!string(v, vp, pattern)) return;
    std::string why;
    out.detail_matches = problem::DetailPattern::compile(pattern, why);
    if (!out.detail_matches) diag_.error(vp, "invalid regex \"" + pattern + "\": " + why);
  });
}

bool Parser::route(const Json& j, const Path& p, Route& out,
                   const std::optional<RateLimitPolicy>& default_policy) {
  out.rate_limit = default_policy;
  if (!object(j, p,
              {"name", "match", "upstream", "strip_prefix", "host_header", "escaped_slashes",
               "normalize", "dialect", "rate_limit", "rules", "max_body_bytes", "websocket"})) {
    return false;
  }
  field(j, p, "match", [&](const Json& v, const Path& vp) {
    if (!object(v, vp, {"prefix", "host"})) return;
    field(v, vp, "prefix", [&](const Json& pv, const Path& pp) {
      std::string prefix;
      if (!string(pv, pp, prefix)) return;
      if (prefix.front() != '/') {
        diag_.error(pp, "prefix must start with /, got \"" + prefix + "\"");
      } else if (prefix.find_first_of("?# \t") != std::string::npos) {
        diag_.error(pp,
                    "prefix must be a path (no query, fragment or spaces), got \"" + prefix + "\"");
      } else if (std::string normal; !is_normal_path(prefix, normal)) {
        // Requests are matched on their normalized path, so a prefix in any other form
        // could never match.
        diag_.error(pp,
                    "prefix must be a normalized path (no dot segments, repeated slashes or "
                    "encoded unreserved characters)" +
                        (normal.empty() ? std::string() : ": did you mean \"" + normal + "\"?"));
      } else {
        out.prefix = prefix;
      }
    });
    field(v, vp, "host", [&](const Json& hv, const Path& hp) {
      std::string host;
      if (!string(hv, hp, host)) return;
      const auto bracket = host.rfind(']');
      const auto colon = host.rfind(':');
      if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
        diag_.error(hp, "host must not include a port (requests match on the host name alone)");
      } else if (!is_valid_host(host)) {
        diag_.error(hp, "invalid host \"" + host + "\"");
      } else {
        std::transform(host.begin(), host.end(), host.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        out.host = host;
      }
    });
  });
  // Metrics and logs need a name; an unnamed route is called by what it matches.
  out.name = out.host + out.prefix;
  field(j, p, "name", [&](auto& v, auto& vp) { string(v, vp, out.name); });
  field(j, p, "upstream", [&](auto& v, auto& vp) { string(v, vp, out.upstream); });
  field(j, p, "strip_prefix", [&](auto& v, auto& vp) { boolean(v, vp, out.strip_prefix); });
  field(j, p, "host_header", [&](auto& v, auto& vp) {
    using H = Route::HostHeader;
    choice<H>(v, vp, out.host_header, {{"keep", H::keep}, {"upstream", H::upstream}});
  });
  field(j, p, "escaped_slashes", [&](auto& v, auto& vp) {
    using E = Route::EscapedSlashes;
    choice<E>(v, vp, out.escaped_slashes, {{"reject", E::reject}, {"keep", E::keep}});
  });
  field(j, p, "normalize", [&](auto& v, auto& vp) { boolean(v, vp, out.problem.normalize); });
  field(j, p, "websocket", [&](auto& v, auto& vp) { boolean(v, vp, out.websocket); });
  field(j, p, "dialect", [&](const Json& v, const Path& vp) {
    std::string name;
    if (!string(v, vp, name)) return;
    if (auto d = problem::parse_dialect(name))
      out.problem.dialect = *d;
    else
      diag_.error(
          vp,
          "unknown dialect \"" + name +
              "\": expected auto, problem, nested, flat, detail, fieldmap, json, xml, html, text");
  });
  field(j, p, "rate_limit", [&](auto& v, auto& vp) { rate_limit(v, vp, out.rate_limit); });
  field(j, p, "max_body_bytes", [&](const Json& v, const Path& vp) {
    std::uint64_t n = 0;
    if (size(v, vp, n, 0, std::numeric_limits<std::uint64_t>::max())) out.max_body_bytes = n;
  });
  field(j, p, "rules", [&](const Json& v, const Path& vp) {
    if (!v.is_array()) {
      diag_.error(vp, "expected a list of {when, set}, got " + describe(v));
      return;
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      problem::Rule r;
      rule(v[i], vp / i, r);
      out.problem.rules.push_back(std::move(r));
    }
  });
  return true;
}
}  // namespace problemgate::config::detail
