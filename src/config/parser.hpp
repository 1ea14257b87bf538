#pragma once
// The config parser's class, shared by its files: parse.cpp (the file, the top level, listeners
// and upstreams), parse_settings.cpp (admin, limits, ids, telemetry, proxies, health, retries)
// and parse_routes.cpp (routes, rules, rate limits, problem options). Private to src/config.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/internal.hpp"

namespace problemgate::config::detail {

inline constexpr std::uint64_t kMaxErrorBodyCap = 16 * 1024 * 1024;  // bodies are buffered whole
inline constexpr unsigned kMaxThreads = 1024;

using Keys = std::vector<std::string_view>;

bool is_normal_path(const std::string& prefix, std::string& normal);
std::optional<std::string> read_admin_token(const std::string& path, std::string& error);
std::string suggest_duration(std::uint64_t n);
std::string describe(const Json& j);

class Parser {
 public:
  Parser(Diagnostics& diag, std::vector<KeySet>* key_sets) : diag_(diag), key_sets_(key_sets) {}

  void config(const Json& root, Config& out, std::vector<Path>& route_paths);

 private:
  // ---- generic helpers ----
  bool object(const Json& j, const Path& p, const Keys& allowed) {
    if (!j.is_object()) {
      diag_.error(p, "expected a mapping, got " + describe(j));
      return false;
    }
    if (key_sets_ != nullptr)
      key_sets_->push_back({p.str(), std::vector<std::string>(allowed.begin(), allowed.end())});
    for (const auto& [key, value] : j.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      std::string msg = "unknown key \"" + key + "\"";
      const std::string hint = did_you_mean(key, allowed);
      if (!hint.empty()) {
        msg += hint;
      } else {
        msg += "; expected one of:";
        for (auto k : allowed) {
          msg += ' ';  // appended piecewise: GCC 12 warns (-Wrestrict, falsely) on " " + string&&
          msg += k;
        }
      }
      diag_.error(p / key, msg);
    }
    return true;
  }

  // Calls f(value, path) when `key` is present and not null (null = "use the default").
  template <class F>
  void field(const Json& obj, const Path& p, std::string_view key, F&& f) {
    if (!obj.is_object()) return;
    auto it = obj.find(std::string(key));
    if (it == obj.end() || it->is_null()) return;
    const Path vp = p / key;
    f(*it, vp);
  }

  bool boolean(const Json& j, const Path& p, bool& out) {
    if (!j.is_boolean()) {
      diag_.error(p, "expected true or false, got " + describe(j));
      return false;
    }
    out = j.get<bool>();
    return true;
  }

  /// true/false, or the strings "on"/"off" (YAML 1.2 keeps a bare `off` a string).
  bool on_off(const Json& j, const Path& p, bool& out) {
    if (j.is_boolean()) {
      out = j.get<bool>();
      return true;
    }
    if (j.is_string() &&
        (j.get_ref<const std::string&>() == "on" || j.get_ref<const std::string&>() == "off")) {
      out = j.get_ref<const std::string&>() == "on";
      return true;
    }
    diag_.error(p, "expected on, off, true or false, got " + describe(j));
    return false;
  }

  bool string(const Json& j, const Path& p, std::string& out) {
    if (!j.is_string() || j.get_ref<const std::string&>().empty()) {
      diag_.error(p, "expected a non-empty string, got " + describe(j));
      return false;
    }
    out = j.get<std::string>();
    return true;
  }

  template <class T>
  bool count(const Json& j, const Path& p, T& out, std::uint64_t min, std::uint64_t max) {
    if (!j.is_number_unsigned() || j.get<std::uint64_t>() < min || j.get<std::uint64_t>() > max) {
      diag_.error(p, "expected a whole number from " + std::to_string(min) + " to " +
                         std::to_string(max) + ", got " + describe(j));
      return false;
    }
    out = static_cast<T>(j.get<std::uint64_t>());
    return true;
  }

  bool duration(const Json& j, const Path& p, Duration& out, bool allow_zero = false) {
    std::optional<Duration> d;
    std::optional<std::uint64_t> bare;  // a number without a unit
    if (j.is_string()) {
      const auto& s = j.get_ref<const std::string&>();
      d = parse_duration(s);
      std::uint64_t n = 0;
      if (auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
          !d && ec == std::errc{} && ptr == s.data() + s.size() && !s.empty() && s.front() != '-' &&
          s.front() != '+') {
        bare = n;
      }
    } else if (j.is_number_unsigned()) {
      d = parse_duration(std::to_string(j.get<std::uint64_t>()));
      if (!d) bare = j.get<std::uint64_t>();
    }
    if (bare) {
      diag_.error(p, "invalid duration " + describe(j) +
                         ": a duration needs a unit (ms, s, m, h): did you mean \"" +
                         suggest_duration(*bare) + "\"?");
      return false;
    }
    if (!d) {
      diag_.error(p, "invalid duration " + describe(j) + ": expected e.g. 250ms, 10s, 5m, 1h");
      return false;
    }
    if (!allow_zero && d->count() == 0) {
      diag_.error(p, "must be greater than 0");
      return false;
    }
    out = *d;
    return true;
  }

  template <class T>
  bool size(const Json& j, const Path& p, T& out, std::uint64_t min, std::uint64_t max) {
    std::optional<std::uint64_t> n;
    if (j.is_string())
      n = parse_size(j.get<std::string>());
    else if (j.is_number_unsigned())
      n = j.get<std::uint64_t>();
    if (!n) {
      diag_.error(p, "invalid size " + describe(j) + ": expected bytes or e.g. 64KiB, 1MiB");
      return false;
    }
    if (*n < min) {
      diag_.error(p, min == 1 ? std::string("must be greater than 0")
                              : "must be at least " + std::to_string(min) + " bytes");
      return false;
    }
    if (*n > max) {
      diag_.error(p, "must be at most " + std::to_string(max) + " bytes");
      return false;
    }
    out = static_cast<T>(*n);
    return true;
  }

  template <class E>
  bool choice(const Json& j, const Path& p, E& out,
              std::initializer_list<std::pair<std::string_view, E>> options) {
    std::string msg = "expected one of";
    for (const auto& [name, value] : options) {
      if (j.is_string() && j.get_ref<const std::string&>() == name) {
        out = value;
        return true;
      }
      msg += ' ';  // appended piecewise: GCC 12 warns (-Wrestrict, falsely) on " " + string&&
      msg += name;
    }
    msg += ", got ";
    msg += describe(j);
    diag_.error(p, msg);
    return false;
  }

  bool snake_code(const Json& j, const Path& p, std::string& out) {
    if (!string(j, p, out)) return false;
    if (!is_snake_code(out)) {
      diag_.error(p, "\"" + out + "\" is not lowercase_snake_case");
      return false;
    }
    return true;
  }

  // ---- one per struct ----
  void listen(const Json& j, const Path& p, std::vector<Endpoint>& out);

  /// A path to a PEM file: a non-empty string (string() refuses an empty one). The file itself
  /// is read by the proxy (at start-up and on reload), which names it in any error.
  bool pem_path(const Json& v, const Path& vp, std::string& out) { return string(v, vp, out); }

  bool listen_tls(const Json& j, const Path& p, ListenTls& out);

  bool upstream_tls(const Json& j, const Path& p, UpstreamTls& out);

  void threads(const Json& j, const Path& p, unsigned& out);

  /// `off` (or false) -> nullopt; else HOST:PORT.
  void endpoint_or_off(const Json& v, const Path& vp, std::optional<Endpoint>& out);

  void admin(const Json& j, const Path& p, Admin& out);

  void limits(const Json& j, const Path& p, Limits& out);

  void request_id(const Json& j, const Path& p, RequestId& out);

  /// A list of distinct non-empty strings, each checked by `check` (an error message, or "").
  template <class Check>
  bool string_list(const Json& j, const Path& p, std::vector<std::string>& out, std::size_t max,
                   Check check) {
    if (!j.is_array()) {
      diag_.error(p, "expected a list of strings, got " + describe(j));
      return false;
    }
    if (j.size() > max) {
      diag_.error(p,
                  "at most " + std::to_string(max) + " entries, got " + std::to_string(j.size()));
      return false;
    }
    bool ok = true;
    out.clear();
    for (std::size_t i = 0; i < j.size(); ++i) {
      std::string s;
      if (!string(j[i], p / i, s)) {
        ok = false;
        continue;
      }
      if (const std::string why = check(s); !why.empty()) {
        diag_.error(p / i, why);
        ok = false;
        continue;
      }
      if (std::find(out.begin(), out.end(), s) != out.end()) {
        diag_.error(p / i, "\"" + s + "\" is listed twice");
        ok = false;
        continue;
      }
      out.push_back(std::move(s));
    }
    return ok;
  }

  void telemetry(const Json& j, const Path& p, Telemetry& out);

  void trusted_proxies(const Json& j, const Path& p, std::vector<Cidr>& out);

  void problem_options(const Json& j, const Path& p, problem::Options& out);

  void rate_limit_headers(const Json& j, const Path& p, RateLimitHeaders& out);

  void rate_limit_store(const Json& j, const Path& p, RateLimitStore& out);

  // `off` (or false) -> nullopt; a mapping -> a policy. Returns false when invalid.
  bool rate_limit(const Json& j, const Path& p, std::optional<RateLimitPolicy>& out);

  void upstream(const Json& j, const Path& p, Upstream& out);

  bool health_check(const Json& j, const Path& p, HealthCheck& out);

  void retries(const Json& j, const Path& p, Retries& out);

  bool target(const Json& j, const Path& p, UpstreamTarget& out);

  void url(const Json& j, const Path& p, Upstream& out);

  void upstreams(const Json& j, const Path& p, std::vector<Upstream>& out);

  void rule(const Json& j, const Path& p, problem::Rule& out);

  void rule_when(const Json& j, const Path& p, problem::Rule::When& out);

  // False when `j` is not a route at all (then it is dropped, so it can't cause follow-on
  // "overlapping routes" noise).
  bool route(const Json& j, const Path& p, Route& out,
             const std::optional<RateLimitPolicy>& default_policy);

  Diagnostics& diag_;
  std::vector<KeySet>* key_sets_;
};

}  // namespace problemgate::config::detail
