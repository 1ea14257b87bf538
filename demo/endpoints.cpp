#include "endpoints.hpp"

#include "problemgate/problem/problem.hpp"

#include "bodies/bodies.hpp"

#include <problemgate/core/json_escape.hpp>

#include <boost/beast/http/status.hpp>
#include <zlib.h>

#include <array>
#include <charconv>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace problemgate::demo {
namespace {

constexpr std::string_view kServerLine = "Server: problemgate-demo-api\r\n";
constexpr std::string_view kJson = "application/json";
constexpr std::string_view kProblemJson = "application/problem+json";
constexpr std::string_view kHtml = "text/html; charset=utf-8";
constexpr std::string_view kText = "text/plain; charset=utf-8";

struct Header {
  std::string_view name;
  std::string_view value;
};

Prebuilt make(unsigned status, std::string_view content_type, std::string body,
              std::initializer_list<Header> extra = {}) {
  Prebuilt p;
  p.status = status;
  p.head.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(reason(status));
  p.head.append("\r\n").append(kServerLine);
  if (!content_type.empty()) p.head.append("Content-Type: ").append(content_type).append("\r\n");
  for (const auto& h : extra) p.head.append(h.name).append(": ").append(h.value).append("\r\n");
  // 204 and 304 never carry a body nor (here) a Content-Length; everything else says 0 or N.
  if (status != 204 && status != 304) {
    p.head.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    p.body = std::move(body);
  }
  return p;
}

std::string gzip(std::string_view plain) {
  z_stream zs{};
  // windowBits 15 + 16: gzip wrapper instead of zlib's.
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::string out(deflateBound(&zs, static_cast<uLong>(plain.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  zs.avail_in = static_cast<uInt>(plain.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate failed");
  return out;
}

using Table = std::unordered_map<std::string_view, Prebuilt>;

const Table& fixed_table() {
  namespace b = bodies;
  static const Table table = [] {
    Table t;
    auto add = [&t](std::string_view path, Prebuilt p) { t.emplace(path, std::move(p)); };
    add("/", make(200, kJson, std::string(b::kIndex)));
    add("/ok", make(200, kJson, std::string(b::kOk)));
    add("/204", make(204, {}, {}));
    add("/304", make(304, {}, {}));

    add("/flat/validation", make(400, kJson, std::string(b::kFlatValidation)));
    add("/flat/unauthorized", make(401, kJson, std::string(b::kFlatMissingToken)));
    add("/flat/not-found", make(404, kJson, std::string(b::kFlatAgentNotFound)));
    add("/flat/conflict", make(409, kJson, std::string(b::kFlatAgentExists)));
    add("/flat/rate-limit", make(429, kJson, std::string(b::kFlatRateLimit)));
    add("/flat/internal", make(500, kJson, std::string(b::kFlatInternal)));

    add("/nested/auth-required", make(401, kJson, std::string(b::kNestedAuthRequired)));
    add("/nested/channel-not-found", make(404, kJson, std::string(b::kNestedChannelNotFound)));
    add("/nested/quota", make(403, kJson, std::string(b::kNestedQuota)));
    add("/nested/circuit-open", make(503, kJson, std::string(b::kNestedCircuitOpen)));

    add("/detail/unauthenticated", make(401, kJson, std::string(b::kDetailUnauthenticated)));
    add("/detail/fields", make(422, kJson, std::string(b::kDetailFields)));
    add("/detail/not-found", make(404, kJson, std::string(b::kDetailNotFound)));

    add("/problem/validation", make(400, kProblemJson, std::string(b::kProblemValidation)));
    add("/problem/legacy", make(404, kProblemJson, std::string(b::kProblemLegacy)));
    add("/fieldmap", make(400, kJson, std::string(b::kFieldmap)));

    add("/html/502", make(502, kHtml, std::string(b::kHtmlNginx502)));
    add("/html/404", make(404, kHtml, std::string(b::kHtmlApache404)));
    add("/text/stacktrace", make(500, kText, std::string(b::kTextStacktrace)));
    add("/text/404", make(404, kText, std::string(b::kText404)));
    add("/empty/403", make(403, {}, {}));
    add("/gzip/404", make(404, kJson, gzip(b::kGzipPlain), {{"Content-Encoding", "gzip"}}));
    add("/auth", make(401, kJson, std::string(b::kFlatTokenExpired),
                      {{"WWW-Authenticate", R"(Bearer realm="demo")"}}));
    return t;
  }();
  return table;
}

// The /chunked body, sent as one write of several chunks (framing done here, once).
const Prebuilt& chunked_response() {
  static const Prebuilt p = [] {
    constexpr std::array<std::string_view, 4> pieces = {R"({"chunked":true,)", R"("items":[1,2,3,)",
                                                        R"(4,5],)", R"("done":true})"};
    Prebuilt r;
    r.status = 200;
    r.head.append("HTTP/1.1 200 OK\r\n").append(kServerLine);
    r.head.append("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n");
    for (auto piece : pieces) {
      std::array<char, 16> hex{};
      auto [end, ec] = std::to_chars(hex.data(), hex.data() + hex.size(), piece.size(), 16);
      r.body.append(hex.data(), end).append("\r\n").append(piece).append("\r\n");
    }
    r.body.append("0\r\n\r\n");
    return r;
  }();
  return p;
}

// Everything but X-RateLimit-Reset, which the server appends per request (now + 30 s).
const Prebuilt& nested_rate_limited() {
  static const Prebuilt p =
      make(429, kJson, std::string(bodies::kNestedRateLimited),
           {{"Retry-After", "30"}, {"X-RateLimit-Limit", "50"}, {"X-RateLimit-Remaining", "0"}});
  return p;
}

// `name=value` pairs of a query string, no percent-decoding (the values are numbers).
std::string_view query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size();
}

bool truthy(std::string_view v) { return v == "1" || v == "true" || v == "yes"; }

Route bad(std::string_view message) {
  Route r;
  r.kind = Kind::bad_request;
  r.message = message;
  return r;
}

// ?size=N within [min, kMaxStreamBytes], default `dflt`.
bool size_param(std::string_view query, std::uint64_t dflt, std::uint64_t min, Route& r) {
  const auto v = query_param(query, "size");
  r.size = dflt;
  if (!v.empty() && !parse_u64(v, r.size)) return false;
  if (r.size < min || r.size > kMaxStreamBytes) return false;
  r.chunked = truthy(query_param(query, "chunked"));
  return true;
}

}  // namespace

std::string_view reason(unsigned status) noexcept {
  // Errors: the gateway's own table (RFC 9110 names), so the demo and the gateway never
  // disagree. It has only 4xx and 5xx; the rest (200 OK, 301 Moved Permanently, ...) come
  // from Beast's table.
  if (status >= 400) return problemgate::problem::reason_phrase(static_cast<int>(status));
  namespace http = boost::beast::http;
  if (http::int_to_status(status) == http::status::unknown) return "Unknown";
  const auto r = http::obsolete_reason(static_cast<http::status>(status));
  return {r.data(), r.size()};
}

void append_flat_error(std::string& out, std::string_view error, std::string_view details) {
  out.append(R"({"error":)");
  core::append_json_string(out, error);
  out.append(R"(,"details":)");
  core::append_json_string(out, details);
  out.push_back('}');
}

std::string_view big_block() noexcept {
  static const std::string block = [] {
    std::string s(kBlockBytes, '\0');
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = kBigAlphabet[i % kBigAlphabet.size()];
    return s;
  }();
  return block;
}

std::string_view filler_block() noexcept {
  static const std::string block(kBlockBytes, 'a');
  return block;
}

void warm_up() {
  (void)fixed_table();
  (void)chunked_response();
  (void)nested_rate_limited();
  (void)big_block();
  (void)filler_block();
}

Route route(std::string_view target) {
  const auto q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query =
      q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);

  Route r;
  r.path = path;
  const auto& table = fixed_table();
  if (auto it = table.find(path); it != table.end()) {
    r.kind = Kind::fixed;
    r.fixed = &it->second;
    return r;
  }
  if (path == "/chunked") {
    r.kind = Kind::fixed;
    r.fixed = &chunked_response();
    return r;
  }
  if (path == "/echo") {
    r.kind = Kind::echo;
    return r;
  }
  if (path == "/headers") {
    r.kind = Kind::headers;
    return r;
  }
  if (path == "/__stats") {
    r.kind = Kind::stats;
    return r;
  }
  if (path == "/nested/rate-limited") {
    r.kind = Kind::nested_rate;
    r.fixed = &nested_rate_limited();
    return r;
  }
  if (path == "/big") {
    if (!size_param(query, kDefaultBigBytes, 0, r))
      return bad("size must be an integer from 0 to 1073741824");
    r.kind = Kind::big;
    return r;
  }
  if (path == "/error-big") {
    if (!size_param(query, kDefaultBigBytes, kErrorBigMin, r))
      return bad("size must be an integer from 26 to 1073741824");
    r.kind = Kind::error_big;
    return r;
  }
  if (path == "/slow") {
    const auto v = query_param(query, "ms");
    if (!v.empty() && (!parse_u64(v, r.size) || r.size > kMaxSlowMs))
      return bad("ms must be an integer from 0 to 600000");
    r.kind = Kind::slow;
    return r;
  }
  if (constexpr std::string_view prefix = "/status/"; path.starts_with(prefix)) {
    std::uint64_t code = 0;
    if (!parse_u64(path.substr(prefix.size()), code) || code < 200 || code > 599)
      return bad("status must be an integer from 200 to 599");
    r.kind = Kind::status;
    r.status = static_cast<unsigned>(code);
    return r;
  }
  r.kind = Kind::not_found;
  return r;
}

}  // namespace problemgate::demo
