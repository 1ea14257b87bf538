#include "problemgate/config/dump.hpp"

#include <nlohmann/json.hpp>

namespace problemgate::config {

namespace {

using Json = nlohmann::ordered_json;

std::string duration(Duration d) { return std::to_string(d.count()) + "ms"; }

std::string redact_url(const std::string& url) {
  const auto scheme = url.find("://");
  const auto at = url.find('@', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme == std::string::npos || at == std::string::npos) return url;
  return url.substr(0, scheme + 3) + "REDACTED@" + url.substr(at + 1);
}

Json policy(const RateLimitPolicy& p) {
  Json j;
  j["limit"] = p.limit;
  j["window"] = duration(p.window);
  switch (p.key) {
    case RateLimitPolicy::Key::client_ip: j["key"] = "client_ip"; break;
    case RateLimitPolicy::Key::route: j["key"] = "route"; break;
    case RateLimitPolicy::Key::header: j["key"] = "header:" + p.header_name; break;
  }
  j["burst"] = p.burst;
  return j;
}

}  // namespace

std::string dump_json(const Config& c) {
  Json j;
  j["source"] = c.source;
  Json listen = Json::array();
  for (const auto& l : c.listen) {
    if (!l.tls) {
      listen.push_back(l.to_string());
      continue;
    }
    const auto& t = *l.tls;
    Json certs = Json::array();
    for (std::size_t i = 1; i < t.certificates.size(); ++i)
      certs.push_back({{"cert", t.certificates[i].cert}, {"key", t.certificates[i].key}});
    listen.push_back(
        {{"address", l.to_string()},
         {"tls",
          {{"cert", t.certificates.front().cert},
           {"key", t.certificates.front().key},
           {"certificates", certs},
           {"min_version", t.min_version == ListenTls::Version::tls1_3 ? "1.3" : "1.2"},
           {"alpn", t.alpn},
           {"client_ca", t.client_ca.empty() ? Json(nullptr) : Json(t.client_ca)},
           {"handshake_timeout", duration(t.handshake_timeout)}}}});
  }
  j["listen"] = listen;
  j["threads"] = c.worker_threads();
  j["admin"]["listen"] = c.admin.listen ? Json(c.admin.listen->to_string()) : Json("off");
  j["admin"]["probes_listen"] =
      c.admin.probes_listen ? Json(c.admin.probes_listen->to_string()) : Json("off");
  // The path only: the token itself is never shown.
  j["admin"]["token_file"] = c.admin.token_file.empty() ? Json(nullptr) : Json(c.admin.token_file);
  j["drain"]["accept_for"] = duration(c.drain.accept_for);
  const auto& l = c.limits;
  j["limits"] = {{"max_request_line", l.max_request_line},
                 {"max_header_bytes", l.max_header_bytes},
                 {"max_header_fields", l.max_header_fields},
                 {"max_body_bytes", l.max_body_bytes},
                 {"request_buffer_bytes", l.request_buffer_bytes},
                 {"access_log_buffer_bytes", l.access_log_buffer_bytes},
                 {"header_timeout", duration(l.header_timeout)},
                 {"body_idle_timeout", duration(l.body_idle_timeout)},
                 {"idle_timeout", duration(l.idle_timeout)},
                 {"write_timeout", duration(l.write_timeout)},
                 {"max_requests_per_connection", l.max_requests_per_connection},
                 {"max_connections", l.max_connections},
                 {"drain_timeout", duration(l.drain_timeout)},
                 {"tunnel_idle_timeout", duration(l.tunnel_idle_timeout)}};
  j["access_log"] = c.access_log;
  j["telemetry"] = {
      {"subcode_labels",
       c.telemetry.subcode_labels ? Json(*c.telemetry.subcode_labels) : Json(nullptr)},
      {"redact_query", c.telemetry.redact_query},
      {"max_logged_detail", c.telemetry.max_logged_detail}};
  j["request_id"] = {{"header", c.request_id.header},
                     {"trust_incoming", c.request_id.trust_incoming}};
  Json trusted = Json::array();
  for (const auto& t : c.trusted_proxies) trusted.push_back(t.text);
  j["trusted_proxies"] = trusted;
  Json problem;
  problem["type_base"] = c.problem.type_base ? Json(*c.problem.type_base) : Json(nullptr);
  problem["expose_5xx_detail"] = c.problem.expose_5xx_detail;
  problem["max_error_body"] = c.problem.max_error_body;
  Json catalog = Json::object();
  for (const auto& [status, e] : c.problem.catalog)
    catalog[std::to_string(status)] = {{"code", e.code}, {"title", e.title}};
  problem["catalog"] = catalog;
  Json legacy = Json::object();
  for (const auto& [k, v] : c.problem.legacy_codes)
    legacy[k] = {{"code", v.code}, {"subcode", v.subcode}};
  problem["legacy_codes"] = legacy;
  j["problem"] = problem;
  j["rate_limit_headers"] = {
      {"format", c.rate_limit_headers.format == RateLimitHeaders::Format::x_ratelimit
                     ? "x-ratelimit"
                 : c.rate_limit_headers.format == RateLimitHeaders::Format::ietf ? "ietf"
                                                                                 : "both"},
      {"reset", c.rate_limit_headers.reset == RateLimitHeaders::Reset::epoch ? "epoch" : "delta"}};
  if (c.rate_limit) j["rate_limit"] = policy(*c.rate_limit);
  const auto& st = c.rate_limit_store;
  j["rate_limit_store"] = {
      {"type", st.type == RateLimitStore::Type::local ? "local" : "redis"},
      {"url", redact_url(st.url)},
      {"timeout", duration(st.timeout)},
      {"on_error", st.on_error == RateLimitStore::OnError::allow ? "allow" : "deny"},
      {"key_prefix", st.key_prefix},
      {"pool_size", st.pool_size}};
  Json ups = Json::object();
  for (const auto& u : c.upstreams) {
    ups[u.name] = {{"url", redact_url(u.url)},
                   {"connect_timeout", duration(u.connect_timeout)},
                   {"timeout", duration(u.timeout)},
                   {"idle_timeout", duration(u.idle_timeout)},
                   {"reuse_check_after", duration(u.reuse_check_after)},
                   {"max_connections", u.max_connections}};
    Json& ju = ups[u.name];
    if (u.endpoints.size() > 1) {
      ju.erase("url");
      Json eps = Json::array();
      for (const auto& t : u.endpoints) eps.push_back(redact_url(t.url));
      ju["endpoints"] = eps;
    }
    if (u.https) {
      auto or_null = [](const std::string& v) { return v.empty() ? Json(nullptr) : Json(v); };
      ju["tls"] = {{"ca_file", or_null(u.tls.ca_file)},
                   {"server_name", or_null(u.tls.server_name)},
                   {"verify", u.tls.verify},
                   {"cert", or_null(u.tls.cert)},
                   {"key", or_null(u.tls.key)}};
    }
    ju["resolve"] = duration(u.resolve);
    ju["lb"] = u.lb == Upstream::Lb::round_robin ? "round_robin" : "least_request";
    if (u.health_check) {
      const auto& hc = *u.health_check;
      ju["health_check"] = {{"path", hc.path},
                            {"interval", duration(hc.interval)},
                            {"timeout", duration(hc.timeout)},
                            {"unhealthy_threshold", hc.unhealthy_threshold},
                            {"healthy_threshold", hc.healthy_threshold}};
    }
    ju["outlier"] = {{"consecutive_failures", u.outlier.consecutive_failures},
                     {"ejection_time", duration(u.outlier.ejection_time)},
                     {"max_ejected_percent", u.outlier.max_ejected_percent}};
    Json on = Json::array();
    if (u.retries.on_connect_failure) on.push_back("connect_failure");
    if (u.retries.on_reset) on.push_back("reset_before_response");
    Json methods = Json::array();
    const std::pair<std::uint8_t, const char*> names[] = {{kRetryGet, "GET"},
                                                          {kRetryHead, "HEAD"},
                                                          {kRetryOptions, "OPTIONS"},
                                                          {kRetryPut, "PUT"},
                                                          {kRetryDelete, "DELETE"}};
    for (const auto& [bit, name] : names)
      if (u.retries.methods & bit) methods.push_back(name);
    ju["retries"] = {{"attempts", u.retries.attempts},
                     {"on", on},
                     {"methods", methods},
                     {"budget_percent", u.retries.budget_percent},
                     {"budget_reserve", u.retries.budget_reserve}};
  }
  j["upstreams"] = ups;
  Json routes = Json::array();
  for (const auto& r : c.routes) {
    Json jr;
    jr["name"] = r.name;
    jr["match"] = {{"prefix", r.prefix}};
    if (!r.host.empty()) jr["match"]["host"] = r.host;
    jr["upstream"] = r.upstream;
    jr["strip_prefix"] = r.strip_prefix;
    jr["host_header"] = r.host_header == Route::HostHeader::keep ? "keep" : "upstream";
    jr["escaped_slashes"] = r.escaped_slashes == Route::EscapedSlashes::reject ? "reject" : "keep";
    jr["normalize"] = r.problem.normalize;
    jr["websocket"] = r.websocket;
    jr["dialect"] = std::string(problem::dialect_name(r.problem.dialect));
    if (r.rate_limit) jr["rate_limit"] = policy(*r.rate_limit);
    if (r.max_body_bytes) jr["max_body_bytes"] = *r.max_body_bytes;
    jr["rules"] = r.problem.rules.size();
    routes.push_back(jr);
  }
  j["routes"] = routes;
  return j.dump(2);
}

}  // namespace problemgate::config
