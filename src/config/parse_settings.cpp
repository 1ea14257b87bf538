// Admin, limits, request ids, telemetry, trusted proxies, health checks, retries: the
// Parser's sections for them (parser.hpp).
#include <charconv>
#include <limits>

#include "config/parser.hpp"
#include "problemgate/core/request_target.hpp"
#include "problemgate/problem/detail_pattern.hpp"

namespace problemgate::config::detail {

void Parser::threads(const Json& j, const Path& p, unsigned& out) {
  if (j.is_string() && j.get_ref<const std::string&>() == "auto") {
    out = 0;
    return;
  }
  if (!j.is_number_unsigned() || j.get<std::uint64_t>() < 1 ||
      j.get<std::uint64_t>() > kMaxThreads) {
    diag_.error(p, "expected auto or a number from 1 to " + std::to_string(kMaxThreads) + ", got " +
                       describe(j));
    return;
  }
  out = static_cast<unsigned>(j.get<std::uint64_t>());
}

void Parser::endpoint_or_off(const Json& v, const Path& vp, std::optional<Endpoint>& out) {
  if ((v.is_string() && v.get_ref<const std::string&>() == "off") ||
      (v.is_boolean() && !v.get<bool>())) {
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

void Parser::admin(const Json& j, const Path& p, Admin& out) {
  if (!object(j, p, {"listen", "probes_listen", "token_file"})) return;
  field(j, p, "listen", [&](auto& v, auto& vp) { endpoint_or_off(v, vp, out.listen); });
  field(j, p, "probes_listen",
        [&](auto& v, auto& vp) { endpoint_or_off(v, vp, out.probes_listen); });
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

void Parser::limits(const Json& j, const Path& p, Limits& out) {
  constexpr auto kMaxSize = std::numeric_limits<std::uint32_t>::max();
  constexpr auto kMaxCount = std::numeric_limits<std::uint32_t>::max();
  if (!object(j, p,
              {"max_request_line", "max_header_bytes", "max_header_fields", "max_body_bytes",
               "request_buffer_bytes", "access_log_buffer_bytes", "header_timeout",
               "body_idle_timeout", "idle_timeout", "write_timeout", "max_requests_per_connection",
               "max_connections", "drain_timeout", "tunnel_idle_timeout"})) {
    return;
  }
  field(j, p, "max_request_line",
        [&](auto& v, auto& vp) { size(v, vp, out.max_request_line, 1, kMaxSize); });
  field(j, p, "max_header_bytes",
        [&](auto& v, auto& vp) { size(v, vp, out.max_header_bytes, 1, kMaxSize); });
  field(j, p, "max_header_fields",
        [&](auto& v, auto& vp) { count(v, vp, out.max_header_fields, 1, kMaxCount); });
  field(j, p, "max_body_bytes", [&](auto& v, auto& vp) {
    size(v, vp, out.max_body_bytes, 0, std::numeric_limits<std::uint64_t>::max());
  });
  // 0 = stream from the first byte; the cap bounds memory (max_connections x this).
  field(j, p, "request_buffer_bytes",
        [&](auto& v, auto& vp) { size(v, vp, out.request_buffer_bytes, 0, 64 * 1024 * 1024); });
  field(j, p, "access_log_buffer_bytes", [&](auto& v, auto& vp) {
    size(v, vp, out.access_log_buffer_bytes, 4 * 1024, 1024 * 1024 * 1024);
  });
  field(j, p, "header_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.header_timeout); });
  field(j, p, "body_idle_timeout",
        [&](auto& v, auto& vp) { duration(v, vp, out.body_idle_timeout); });
  field(j, p, "idle_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.idle_timeout); });
  field(j, p, "write_timeout", [&](auto& v, auto& vp) { duration(v, vp, out.write_timeout); });
  field(j, p, "max_requests_per_connection",
        [&](auto& v, auto& vp) { count(v, vp, out.max_requests_per_connection, 1, kMaxCount); });
  field(j, p, "max_connections",
        [&](auto& v, auto& vp) { count(v, vp, out.max_connections, 1, kMaxCount); });
  // 0 is meaningful here: close at once on SIGTERM.
  field(j, p, "drain_timeout",
        [&](auto& v, auto& vp) { duration(v, vp, out.drain_timeout, true); });
  field(j, p, "tunnel_idle_timeout",
        [&](auto& v, auto& vp) { duration(v, vp, out.tunnel_idle_timeout); });
}

void Parser::request_id(const Json& j, const Path& p, RequestId& out) {
  if (!object(j, p, {"header", "trust_incoming"})) return;
  field(j, p, "header", [&](const Json& v, const Path& vp) {
    std::string h;
    if (!string(v, vp, h)) return;
    if (!is_token(h))
      diag_.error(vp, "\"" + h + "\" is not a valid header name");
    else
      out.header = h;
  });
  field(j, p, "trust_incoming", [&](auto& v, auto& vp) { boolean(v, vp, out.trust_incoming); });
}

void Parser::telemetry(const Json& j, const Path& p, Telemetry& out) {
  if (!object(j, p, {"subcode_labels", "redact_query", "max_logged_detail"})) return;
  field(j, p, "subcode_labels", [&](const Json& v, const Path& vp) {
    std::vector<std::string> labels;
    if (string_list(v, vp, labels, Telemetry::kMaxSubcodeLabels, [](const std::string& s) {
          return is_snake_code(s) ? std::string()
                                  : "\"" + s + "\" is not lowercase_snake_case (a subcode)";
        }))
      out.subcode_labels = std::move(labels);
  });
  field(j, p, "redact_query", [&](const Json& v, const Path& vp) {
    string_list(v, vp, out.redact_query, 100, [](const std::string& s) {
      for (const char c : s)
        if (c == '&' || c == '=' || c == '#' || static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
          return "\"" + s +
                 "\" is not a query parameter name (no '&', '=', '#', spaces or controls)";
      return std::string();
    });
  });
  field(j, p, "max_logged_detail", [&](auto& v, auto& vp) {
    size(v, vp, out.max_logged_detail, 0, Telemetry::kMaxLoggedDetailLimit);
  });
}

void Parser::trusted_proxies(const Json& j, const Path& p, std::vector<Cidr>& out) {
  if (!j.is_array()) {
    diag_.error(p, "expected a list of CIDRs, got " + describe(j));
    return;
  }
  for (std::size_t i = 0; i < j.size(); ++i) {
    std::string text;
    if (!string(j[i], p / i, text)) continue;
    if (auto c = core::parse_cidr(text))
      out.push_back(*c);
    else
      diag_.error(p / i, "invalid CIDR \"" + text + "\": expected e.g. 10.0.0.0/8 or fd00::/8");
  }
}

bool Parser::health_check(const Json& j, const Path& p, HealthCheck& out) {
  if (!object(j, p, {"path", "interval", "timeout", "unhealthy_threshold", "healthy_threshold"}))
    return false;
  field(j, p, "path", [&](auto& v, auto& vp) {
    if (string(v, vp, out.path) &&
        (out.path.front() != '/' || out.path.find_first_of(" \r\n\t") != std::string::npos))
      diag_.error(vp, "expected an absolute path like /healthz, got \"" + out.path + "\"");
  });
  field(j, p, "interval", [&](auto& v, auto& vp) { duration(v, vp, out.interval); });
  field(j, p, "timeout", [&](auto& v, auto& vp) { duration(v, vp, out.timeout); });
  field(j, p, "unhealthy_threshold",
        [&](auto& v, auto& vp) { count(v, vp, out.unhealthy_threshold, 1, 1000); });
  field(j, p, "healthy_threshold",
        [&](auto& v, auto& vp) { count(v, vp, out.healthy_threshold, 1, 1000); });
  return true;
}

void Parser::retries(const Json& j, const Path& p, Retries& out) {
  if (!object(j, p, {"attempts", "on", "methods", "budget_percent", "budget_reserve"})) return;
  field(j, p, "attempts", [&](auto& v, auto& vp) { count(v, vp, out.attempts, 0, 10); });
  field(j, p, "on", [&](auto& v, auto& vp) {
    if (!v.is_array()) {
      diag_.error(vp,
                  "expected a list of connect_failure, reset_before_response, got " + describe(v));
      return;
    }
    out.on_connect_failure = out.on_reset = false;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string name = v[i].is_string() ? v[i].template get<std::string>() : std::string();
      if (name == "connect_failure")
        out.on_connect_failure = true;
      else if (name == "reset_before_response")
        out.on_reset = true;
      else
        diag_.error(vp / i,
                    "expected connect_failure or reset_before_response, got " + describe(v[i]));
    }
  });
  field(j, p, "methods", [&](auto& v, auto& vp) {
    if (!v.is_array()) {
      diag_.error(vp, "expected a list of GET, HEAD, OPTIONS, PUT, DELETE, got " + describe(v));
      return;
    }
    out.methods = 0;
    static constexpr std::pair<std::string_view, std::uint8_t> kMethods[] = {
        {"GET", kRetryGet},
        {"HEAD", kRetryHead},
        {"OPTIONS", kRetryOptions},
        {"PUT", kRetryPut},
        {"DELETE", kRetryDelete}};
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string name = v[i].is_string() ? v[i].template get<std::string>() : std::string();
      const auto it = std::find_if(std::begin(kMethods), std::end(kMethods),
                                   [&](const auto& m) { return m.first == name; });
      if (it != std::end(kMethods))
        out.methods |= it->second;
      else
        diag_.error(vp / i,
                    "expected one of GET, HEAD, OPTIONS, PUT, DELETE, got " + describe(v[i]));
    }
  });
  field(j, p, "budget_percent",
        [&](auto& v, auto& vp) { count(v, vp, out.budget_percent, 0, 100); });
  field(j, p, "budget_reserve",
        [&](auto& v, auto& vp) { count(v, vp, out.budget_reserve, 0, 10000); });
}
}  // namespace problemgate::config::detail
