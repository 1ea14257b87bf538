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

#include "config/internal.hpp"
#include "problemgate/core/request_target.hpp"
#include "problemgate/problem/detail_pattern.hpp"

namespace problemgate::config::detail {

namespace {

constexpr std::uint64_t kMaxErrorBodyCap = 16 * 1024 * 1024;  // bodies are buffered whole
constexpr unsigned kMaxThreads = 1024;

using Keys = std::vector<std::string_view>;

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
      error = "the token must be one word of visible ASCII characters (no spaces or line breaks inside)";
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
    if (key_sets_ != nullptr) key_sets_->push_back({p.str(), std::vector<std::string>(allowed.begin(), allowed.end())});
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
    if (j.is_string() && (j.get_ref<const std::string&>() == "on" || j.get_ref<const std::string&>() == "off")) {
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
      diag_.error(p, "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
                         ", got " + describe(j));
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
          !d && ec == std::errc{} && ptr == s.data() + s.size() && !s.empty() && s.front() != '-' && s.front() != '+') {
        bare = n;
      }
    } else if (j.is_number_unsigned()) {
      d = parse_duration(std::to_string(j.get<std::uint64_t>()));
      if (!d) bare = j.get<std::uint64_t>();
    }
    if (bare) {
      diag_.error(p, "invalid duration " + describe(j) + ": a duration needs a unit (ms, s, m, h): did you mean \"" +
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
    if (j.is_string()) n = parse_size(j.get<std::string>());
    else if (j.is_number_unsigned()) n = j.get<std::uint64_t>();
    if (!n) {
      diag_.error(p, "invalid size " + describe(j) + ": expected bytes or e.g. 64KiB, 1MiB");
      return false;
    }
    if (*n < min) {
      diag_.error(p, min == 1 ? std::string("must be greater than 0") : "must be at least " + std::to_string(min) + " bytes");
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
  bool choice(const Json& j, const Path& p, E& out, std::initializer_list<std::pair<std::string_view, E>> options) {
    std::string msg = "expected one of";
    for (const auto& [name, value] : options) {
      if (j.is_string() && j.get_ref<const std::string&>() == name) {
        out = value;
        return true;
      }
      msg += " " + std::string(name);
    }
    diag_.error(p, msg + ", got " + describe(j));
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
  void listen(const Json& j, const Path& p, std::vector<Endpoint>& out) {
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

  /// A path to a PEM file: a non-empty string (string() refuses an empty one). The file itself
  /// is read by the proxy (at start-up and on reload), which names it in any error.
  bool pem_path(const Json& v, const Path& vp, std::string& out) { return string(v, vp, out); }

  bool listen_tls(const Json& j, const Path& p, ListenTls& out) {
    if (!object(j, p, {"cert", "key", "certificates", "min_version", "alpn", "client_ca", "handshake_timeout"}))
      return false;
    const std::size_t errors_before = diag_.count();
    CertKey first;
    if (!j.contains("cert") || j["cert"].is_null()) diag_.error(p, "missing cert (a PEM certificate chain, leaf first)");
    if (!j.contains("key") || j["key"].is_null()) diag_.error(p, "missing key (the PEM private key of cert)");
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
      std::string text = v.is_number() ? (v.template get<double>() == 1.2   ? "1.2"
                                           : v.template get<double>() == 1.3 ? "1.3"
                                                                             : v.dump())
                                       : v.is_string() ? v.template get<std::string>() : describe(v);
      if (text == "1.2") out.min_version = V::tls1_2;
      else if (text == "1.3") out.min_version = V::tls1_3;
      else diag_.error(vp, "expected \"1.2\" or \"1.3\", got " + describe(v));
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
        else out.alpn.push_back(std::move(name));
      }
    });
    field(j, p, "client_ca", [&](auto& v, auto& vp) { pem_path(v, vp, out.client_ca); });
    field(j, p, "handshake_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.handshake_timeout); });
    return diag_.count() == errors_before;
  }

  bool upstream_tls(const Json& j, const Path& p, UpstreamTls& out) {
    if (!object(j, p, {"ca_file", "server_name", "verify", "cert", "key"})) return false;
    field(j, p, "ca_file", [&](auto& v, auto& vp) { pem_path(v, vp, out.ca_file); });
    field(j, p, "server_name", [&](auto& v, auto& vp) {
      if (string(v, vp, out.server_name) && (out.server_name.empty() || !is_valid_host(out.server_name)))
        diag_.error(vp, "expected a host name like api.example.com, got \"" + out.server_name + "\"");
    });
    field(j, p, "verify", [&](auto& v, auto& vp) {
      if (!v.is_boolean()) diag_.error(vp, "expected true or false, got " + describe(v));
      else out.verify = v.template get<bool>();
    });
    field(j, p, "cert", [&](auto& v, auto& vp) { pem_path(v, vp, out.cert); });
    field(j, p, "key", [&](auto& v, auto& vp) { pem_path(v, vp, out.key); });
    if (out.cert.empty() != out.key.empty())
      diag_.error(p, out.cert.empty() ? "key without cert: a client certificate needs both"
                                      : "cert without key: a client certificate needs both");
    return true;
  }

  void threads(const Json& j, const Path& p, unsigned& out) {
    if (j.is_string() && j.get_ref<const std::string&>() == "auto") {
      out = 0;
      return;
    }
    if (!j.is_number_unsigned() || j.get<std::uint64_t>() < 1 || j.get<std::uint64_t>() > kMaxThreads) {
      diag_.error(p, "expected auto or a number from 1 to " + std::to_string(kMaxThreads) + ", got " + describe(j));
      return;
    }
    out = static_cast<unsigned>(j.get<std::uint64_t>());
  }

  /// `off` (or false) -> nullopt; else HOST:PORT.
  void endpoint_or_off(const Json& v, const Path& vp, std::optional<Endpoint>& out) {
    if ((v.is_string() && v.get_ref<const std::string&>() == "off") || (v.is_boolean() && !v.get<bool>())) {
      out.reset();
      return;
    }
    std::string text, error;
    if (!v.is_string()) {
      diag_.error(vp, "expected off or HOST:PORT, got " + describe(v));
    } else if (auto ep = parse_endpoint(text = v.get<std::string>(), error)) {
      out = *ep;
    } else {
      diag_.error(vp, "\"" + text + "\": " + error + " (or off)");
    }
  }

  void admin(const Json& j, const Path& p, Admin& out) {
    if (!object(j, p, {"listen", "probes_listen", "token_file"})) return;
    field(j, p, "listen", [&](auto& v, auto& vp) { endpoint_or_off(v, vp, out.listen); });
    field(j, p, "probes_listen", [&](auto& v, auto& vp) { endpoint_or_off(v, vp, out.probes_listen); });
    field(j, p, "token_file", [&](const Json& v, const Path& vp) {
      std::string path;
      if (!string(v, vp, path)) return;
      std::string error;
      if (auto token = read_admin_token(path, error)) {
        out.token_file = std::move(path);
        out.token = std::move(*token);
      } else {
        diag_.error(vp, "\"" + path + "\": " + error);
      }
    });
  }

  void limits(const Json& j, const Path& p, Limits& out) {
    constexpr auto kMaxSize = std::numeric_limits<std::uint32_t>::max();
    constexpr auto kMaxCount = std::numeric_limits<std::uint32_t>::max();
    if (!object(j, p, {"max_request_line", "max_header_bytes", "max_header_fields", "max_body_bytes",
                       "request_buffer_bytes", "access_log_buffer_bytes", "header_timeout", "body_idle_timeout", "idle_timeout", "write_timeout",
                       "max_requests_per_connection", "max_connections", "drain_timeout", "tunnel_idle_timeout"})) {
      return;
    }
    field(j, p, "max_request_line", [&](auto& v, auto& vp) { size(v, vp, out.max_request_line, 1, kMaxSize); });
    field(j, p, "max_header_bytes", [&](auto& v, auto& vp) { size(v, vp, out.max_header_bytes, 1, kMaxSize); });
    field(j, p, "max_header_fields", [&](auto& v, auto& vp) { count(v, vp, out.max_header_fields, 1, kMaxCount); });
    field(j, p, "max_body_bytes", [&](auto& v, auto& vp) {
      size(v, vp, out.max_body_bytes, 0, std::numeric_limits<std::uint64_t>::max());
    });
    // 0 = stream from the first byte; the cap bounds memory (max_connections x this).
    field(j, p, "request_buffer_bytes",
          [&](auto& v, auto& vp) { size(v, vp, out.request_buffer_bytes, 0, 64 * 1024 * 1024); });
    field(j, p, "access_log_buffer_bytes",
          [&](auto& v, auto& vp) { size(v, vp, out.access_log_buffer_bytes, 4 * 1024, 1024 * 1024 * 1024); });
    field(j, p, "header_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.header_timeout); });
    field(j, p, "body_idle_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.body_idle_timeout); });
    field(j, p, "idle_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.idle_timeout); });
    field(j, p, "write_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.write_timeout); });
    field(j, p, "max_requests_per_connection",
          [&](auto& v, auto& vp) { count(v, vp, out.max_requests_per_connection, 1, kMaxCount); });
    field(j, p, "max_connections", [&](auto& v, auto& vp) { count(v, vp, out.max_connections, 1, kMaxCount); });
    // 0 is meaningful here: close at once on SIGTERM.
    field(j, p, "drain_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.drain_timeout, true); });
    field(j, p, "tunnel_idle_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.tunnel_idle_timeout); });
  }

  void request_id(const Json& j, const Path& p, RequestId& out) {
    if (!object(j, p, {"header", "trust_incoming"})) return;
    field(j, p, "header", [&](const Json& v, const Path& vp) {
      std::string h;
      if (!string(v, vp, h)) return;
      if (!is_token(h)) diag_.error(vp, "\"" + h + "\" is not a valid header name");
      else out.header = h;
    });
    field(j, p, "trust_incoming", [&](auto& v, auto& vp) { boolean(v, vp, out.trust_incoming); });
  }

  void trusted_proxies(const Json& j, const Path& p, std::vector<Cidr>& out) {
    if (!j.is_array()) {
      diag_.error(p, "expected a list of CIDRs, got " + describe(j));
      return;
    }
    for (std::size_t i = 0; i < j.size(); ++i) {
      std::string text;
      if (!string(j[i], p / i, text)) continue;
      if (auto c = core::parse_cidr(text)) out.push_back(*c);
      else diag_.error(p / i, "invalid CIDR \"" + text + "\": expected e.g. 10.0.0.0/8 or fd00::/8");
    }
  }

  void problem_options(const Json& j, const Path& p, problem::Options& out) {
    if (!object(j, p, {"type_base", "expose_5xx_detail", "max_error_body", "catalog", "legacy_codes"})) return;
    field(j, p, "type_base", [&](const Json& v, const Path& vp) {
      std::string s;
      if (string(v, vp, s)) out.type_base = s;
    });
    field(j, p, "expose_5xx_detail", [&](auto& v, auto& vp) { boolean(v, vp, out.expose_5xx_detail); });
    field(j, p, "max_error_body", [&](auto& v, auto& vp) { size(v, vp, out.max_error_body, 1, kMaxErrorBodyCap); });
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

  void rate_limit_headers(const Json& j, const Path& p, RateLimitHeaders& out) {
    using F = RateLimitHeaders::Format;
    using R = RateLimitHeaders::Reset;
    if (!object(j, p, {"format", "reset"})) return;
    field(j, p, "format", [&](auto& v, auto& vp) {
      choice<F>(v, vp, out.format, {{"x-ratelimit", F::x_ratelimit}, {"ietf", F::ietf}, {"both", F::both}});
    });
    field(j, p, "reset", [&](auto& v, auto& vp) {
      choice<R>(v, vp, out.reset, {{"epoch", R::epoch}, {"delta", R::delta}});
    });
  }

  void rate_limit_store(const Json& j, const Path& p, RateLimitStore& out) {
    using T = RateLimitStore::Type;
    using E = RateLimitStore::OnError;
    if (!object(j, p, {"type", "url", "timeout", "on_error", "key_prefix", "pool_size"})) return;
    field(j, p, "type", [&](auto& v, auto& vp) { choice<T>(v, vp, out.type, {{"local", T::local}, {"redis", T::redis}}); });
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
      if (d > Duration{10'000}) diag_.error(vp, "must be at most 10s (a stalled Redis holds each limited request this long)");
      else out.timeout = d;
    });
    field(j, p, "on_error", [&](auto& v, auto& vp) { choice<E>(v, vp, out.on_error, {{"allow", E::allow}, {"deny", E::deny}}); });
    field(j, p, "key_prefix", [&](const Json& v, const Path& vp) {
      // "" is a valid prefix (keys start at the hash tag), so not string().
      if (!v.is_string()) diag_.error(vp, "expected a string, got " + describe(v));
      else if (v.get_ref<const std::string&>().size() > 256) diag_.error(vp, "must be at most 256 bytes");
      else out.key_prefix = v.get<std::string>();
    });
    field(j, p, "pool_size", [&](auto& v, auto& vp) { count(v, vp, out.pool_size, 1, 64); });
  }

  // `off` (or false) -> nullopt; a mapping -> a policy. Returns false when invalid.
  bool rate_limit(const Json& j, const Path& p, std::optional<RateLimitPolicy>& out) {
    if ((j.is_string() && j.get_ref<const std::string&>() == "off") || (j.is_boolean() && !j.get<bool>())) {
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

  void upstream(const Json& j, const Path& p, Upstream& out) {
    // Shorthand `name: http://host:port` for an upstream that keeps every default.
    if (j.is_string()) {
      url(j, p, out);
      return;
    }
    if (!object(j, p, {"url", "endpoints", "resolve", "lb", "connect_timeout", "timeout", "idle_timeout",
                       "reuse_check_after", "max_connections", "health_check", "outlier", "retries", "tls"})) return;
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
          diag_.error(vp / i, "\"" + t.url + "\": mixes http:// and https:// endpoints in one upstream");
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
      choice<L>(v, vp, out.lb, {{"round_robin", L::round_robin}, {"least_request", L::least_request}});
    });
    field(j, p, "connect_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.connect_timeout); });
    field(j, p, "timeout", [&](auto& v, auto& vp) { duration(v, vp, out.timeout); });
    field(j, p, "idle_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.idle_timeout); });
    field(j, p, "reuse_check_after", [&](auto& v, auto& vp) { duration(v, vp, out.reuse_check_after, true); });
    field(j, p, "max_connections", [&](auto& v, auto& vp) {
      count(v, vp, out.max_connections, 1, std::numeric_limits<std::uint32_t>::max());
    });
    field(j, p, "health_check", [&](auto& v, auto& vp) {
      HealthCheck hc;
      if (health_check(v, vp, hc)) out.health_check = std::move(hc);
    });
    field(j, p, "outlier", [&](auto& v, auto& vp) {
      if (!object(v, vp, {"consecutive_failures", "ejection_time", "max_ejected_percent"})) return;
      field(v, vp, "consecutive_failures", [&](auto& w, auto& wp) { count(w, wp, out.outlier.consecutive_failures, 0, 1000); });
      field(v, vp, "ejection_time", [&](auto& w, auto& wp) { duration(w, wp, out.outlier.ejection_time); });
      field(v, vp, "max_ejected_percent", [&](auto& w, auto& wp) { count(w, wp, out.outlier.max_ejected_percent, 0, 100); });
    });
    field(j, p, "retries", [&](auto& v, auto& vp) { retries(v, vp, out.retries); });
    field(j, p, "tls", [&](auto& v, auto& vp) {
      if (upstream_tls(v, vp, out.tls) && !out.https && (has_url || has_endpoints))
        diag_.error(vp, "tls settings apply to https:// upstreams; the URL is http://");
    });
  }

  bool health_check(const Json& j, const Path& p, HealthCheck& out) {
    if (!object(j, p, {"path", "interval", "timeout", "unhealthy_threshold", "healthy_threshold"})) return false;
    field(j, p, "path", [&](auto& v, auto& vp) {
      if (string(v, vp, out.path) && (out.path.front() != '/' || out.path.find_first_of(" \r\n\t") != std::string::npos))
        diag_.error(vp, "expected an absolute path like /healthz, got \"" + out.path + "\"");
    });
    field(j, p, "interval", [&](auto& v, auto& vp) { duration(v, vp, out.interval); });
    field(j, p, "timeout", [&](auto& v, auto& vp) { duration(v, vp, out.timeout); });
    field(j, p, "unhealthy_threshold", [&](auto& v, auto& vp) { count(v, vp, out.unhealthy_threshold, 1, 1000); });
    field(j, p, "healthy_threshold", [&](auto& v, auto& vp) { count(v, vp, out.healthy_threshold, 1, 1000); });
    return true;
  }

  void retries(const Json& j, const Path& p, Retries& out) {
    if (!object(j, p, {"attempts", "on", "methods", "budget_percent", "budget_reserve"})) return;
    field(j, p, "attempts", [&](auto& v, auto& vp) { count(v, vp, out.attempts, 0, 10); });
    field(j, p, "on", [&](auto& v, auto& vp) {
      if (!v.is_array()) {
        diag_.error(vp, "expected a list of connect_failure, reset_before_response, got " + describe(v));
        return;
      }
      out.on_connect_failure = out.on_reset = false;
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string name = v[i].is_string() ? v[i].template get<std::string>() : std::string();
        if (name == "connect_failure") out.on_connect_failure = true;
        else if (name == "reset_before_response") out.on_reset = true;
        else diag_.error(vp / i, "expected connect_failure or reset_before_response, got " + describe(v[i]));
      }
    });
    field(j, p, "methods", [&](auto& v, auto& vp) {
      if (!v.is_array()) {
        diag_.error(vp, "expected a list of GET, HEAD, OPTIONS, PUT, DELETE, got " + describe(v));
        return;
      }
      out.methods = 0;
      static constexpr std::pair<std::string_view, std::uint8_t> kMethods[] = {
          {"GET", kRetryGet}, {"HEAD", kRetryHead}, {"OPTIONS", kRetryOptions}, {"PUT", kRetryPut}, {"DELETE", kRetryDelete}};
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string name = v[i].is_string() ? v[i].template get<std::string>() : std::string();
        const auto it = std::find_if(std::begin(kMethods), std::end(kMethods), [&](const auto& m) { return m.first == name; });
        if (it != std::end(kMethods)) out.methods |= it->second;
        else diag_.error(vp / i, "expected one of GET, HEAD, OPTIONS, PUT, DELETE, got " + describe(v[i]));
      }
    });
    field(j, p, "budget_percent", [&](auto& v, auto& vp) { count(v, vp, out.budget_percent, 0, 100); });
    field(j, p, "budget_reserve", [&](auto& v, auto& vp) { count(v, vp, out.budget_reserve, 0, 10000); });
  }

  bool target(const Json& j, const Path& p, UpstreamTarget& out) {
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

  void url(const Json& j, const Path& p, Upstream& out) {
    UpstreamTarget t;
    if (!target(j, p, t)) return;
    out.url = t.url;
    out.host = t.host;
    out.port = t.port;
    out.https = t.https;
    out.endpoints = {std::move(t)};
  }

  void upstreams(const Json& j, const Path& p, std::vector<Upstream>& out) {
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
      if (value.is_null()) diag_.error(up, "missing url");
      else upstream(value, up, u);
      // Kept even when broken so routes naming it don't also report "unknown upstream".
      out.push_back(std::move(u));
    }
  }

  void rule(const Json& j, const Path& p, problem::Rule& out) {
    if (!object(j, p, {"when", "set"})) return;
    const Json* when = j.contains("when") ? &j["when"] : nullptr;
    const Json* set = j.contains("set") ? &j["set"] : nullptr;
    if (when == nullptr || when->is_null() || (when->is_object() && when->empty())) {
      diag_.error(p / "when", "a rule needs at least one condition (status, dialect, upstream_code, detail_matches)");
    } else if (object(*when, p / "when", {"status", "dialect", "upstream_code", "detail_matches"})) {
      rule_when(*when, p / "when", out.when);
    }
    if (set == nullptr || set->is_null() || (set->is_object() && set->empty())) {
      diag_.error(p / "set", "a rule needs at least one field to set (code, subcode, title, detail, type)");
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

  void rule_when(const Json& j, const Path& p, problem::Rule::When& out) {
    field(j, p, "status", [&](const Json& v, const Path& vp) {
      if (v.is_number_unsigned() && v.get<std::uint64_t>() >= 400 && v.get<std::uint64_t>() <= 599) {
        out.status = static_cast<int>(v.get<std::uint64_t>());
        return;
      }
      if (v.is_string()) {
        const auto& s = v.get_ref<const std::string&>();
        if (s.size() == 3 && (s[0] == '4' || s[0] == '5') && (s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X')) {
          out.status_class = s[0] - '0';
          return;
        }
      }
      diag_.error(vp, "expected a status from 400 to 599, 4xx or 5xx, got " + describe(v));
    });
    field(j, p, "dialect", [&](const Json& v, const Path& vp) {
      std::string name;
      if (!string(v, vp, name)) return;
      if (auto d = problem::parse_dialect(name)) out.dialect = *d;
      else diag_.error(vp, "unknown dialect \"" + name + "\"");
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

  // False when `j` is not a route at all (then it is dropped, so it can't cause follow-on
  // "overlapping routes" noise).
  bool route(const Json& j, const Path& p, Route& out, const std::optional<RateLimitPolicy>& default_policy) {
    out.rate_limit = default_policy;
    if (!object(j, p, {"name", "match", "upstream", "strip_prefix", "host_header", "escaped_slashes", "normalize", "dialect",
                       "rate_limit", "rules", "max_body_bytes", "websocket"})) {
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
          diag_.error(pp, "prefix must be a path (no query, fragment or spaces), got \"" + prefix + "\"");
        } else if (std::string normal; !is_normal_path(prefix, normal)) {
          // Requests are matched on their normalized path, so a prefix in any other form
          // could never match.
          diag_.error(pp, "prefix must be a normalized path (no dot segments, repeated slashes or "
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
      if (auto d = problem::parse_dialect(name)) out.problem.dialect = *d;
      else diag_.error(vp, "unknown dialect \"" + name + "\": expected auto, problem, nested, flat, detail, fieldmap, json, xml, html, text");
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

  Diagnostics& diag_;
  std::vector<KeySet>* key_sets_;
};

void Parser::config(const Json& root, Config& out, std::vector<Path>& route_paths) {
  if (root.is_null()) return;  // an empty file: every default
  const Path p;
  if (!root.is_object()) {
    diag_.error(p, "expected a mapping of settings at the top level, got " + describe(root));
    return;
  }
  object(root, p, {"listen", "threads", "admin", "drain", "limits", "request_id", "trusted_proxies", "problem",
                   "rate_limit_headers", "rate_limit", "rate_limit_store", "access_log", "upstreams", "routes"});
  field(root, p, "listen", [&](auto& v, auto& vp) { listen(v, vp, out.listen); });
  field(root, p, "threads", [&](auto& v, auto& vp) { threads(v, vp, out.threads); });
  field(root, p, "admin", [&](auto& v, auto& vp) { admin(v, vp, out.admin); });
  field(root, p, "drain", [&](const Json& v, const Path& vp) {
    if (!object(v, vp, {"accept_for"})) return;
    field(v, vp, "accept_for", [&](auto& av, auto& ap) { duration(av, ap, out.drain.accept_for, true); });
  });
  field(root, p, "limits", [&](auto& v, auto& vp) { limits(v, vp, out.limits); });
  field(root, p, "request_id", [&](auto& v, auto& vp) { request_id(v, vp, out.request_id); });
  field(root, p, "trusted_proxies", [&](auto& v, auto& vp) { trusted_proxies(v, vp, out.trusted_proxies); });
  field(root, p, "problem", [&](auto& v, auto& vp) { problem_options(v, vp, out.problem); });
  field(root, p, "rate_limit_headers", [&](auto& v, auto& vp) { rate_limit_headers(v, vp, out.rate_limit_headers); });
  // Before routes: a route without its own policy starts from this one.
  field(root, p, "rate_limit", [&](auto& v, auto& vp) { rate_limit(v, vp, out.rate_limit); });
  field(root, p, "rate_limit_store", [&](auto& v, auto& vp) { rate_limit_store(v, vp, out.rate_limit_store); });
  field(root, p, "access_log", [&](auto& v, auto& vp) { on_off(v, vp, out.access_log); });
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

}  // namespace

void parse_config(const Json& root, Config& out, std::vector<Path>& route_paths, Diagnostics& diag,
                  std::vector<KeySet>* key_sets) {
  Parser(diag, key_sets).config(root, out, route_paths);
}

}  // namespace problemgate::config::detail
