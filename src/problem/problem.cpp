#include "problemgate/problem/problem.hpp"

#include <charconv>

#include "problem/field_error_json.hpp"
#include "problemgate/core/header_names.hpp"
#include "problemgate/core/json_escape.hpp"

namespace problemgate::problem {

using namespace std::string_view_literals;

namespace {

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// `key` is the member's whole prefix, `,"name":` (one append per member, not four).
void member(std::string& out, std::string_view key, std::string_view value) {
  out += key;
  core::append_json_string(out, value);
}

}  // namespace

void internal::append_field_error(std::string& out, std::string_view path, std::string_view code,
                                  std::optional<std::string_view> message) {
  out += "{\"path\":"sv;
  core::append_json_string(out, path);
  out += ",\"code\":"sv;
  core::append_json_string(out, code);
  if (message) {
    out += ",\"message\":"sv;
    core::append_json_string(out, *message);
  }
  out.push_back('}');
}

void write_problem(const Problem& p, std::string& out) {
  out.reserve(out.size() + 256 + p.extensions.size());
  out += "{\"type\":"sv;
  core::append_json_string(out, p.type);
  member(out, ",\"title\":"sv, p.title);
  out += ",\"status\":"sv;
  append_int(out, p.status);
  if (p.detail) member(out, ",\"detail\":"sv, *p.detail);
  if (!p.instance.empty()) member(out, ",\"instance\":"sv, p.instance);
  if (!p.code.empty()) member(out, ",\"code\":"sv, p.code);
  if (!p.subcode.empty() && p.subcode != p.code) member(out, ",\"subcode\":"sv, p.subcode);
  if (!p.request_id.empty()) member(out, ",\"requestId\":"sv, p.request_id);
  if (p.has_trace_id()) {
    // Hex digits only (set_trace_id checked): nothing to escape.
    out += ",\"traceId\":\""sv;
    out.append(p.trace_id.data(), p.trace_id.size());
    out.push_back('"');
  }
  if (!p.errors.empty()) {
    out += ",\"errors\":["sv;
    bool first = true;
    for (const auto& e : p.errors) {
      if (!first) out.push_back(',');
      first = false;
      internal::append_field_error(out, e.path, e.code, e.message);
    }
    out.push_back(']');
  }
  if (p.retry_after) {
    out += ",\"retryAfter\":"sv;
    append_int(out, *p.retry_after);
  }
  if (!p.extensions.empty()) {
    out.push_back(',');
    out += p.extensions;
  }
  out.push_back('}');
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    default: return "Unknown";
  }
}

namespace {

/// The catalog row as views into the options or static strings: building the row's two strings
/// for every rewritten error would be two allocations, usually discarded.
struct CatalogRow {
  std::string_view code;
  std::string_view title;
};

CatalogRow catalog_row(int status, const Options& options) {
  if (!options.catalog.empty()) {
    if (auto it = options.catalog.find(status); it != options.catalog.end())
      return {it->second.code, it->second.title};
  }
  switch (status) {
    case 400:
    case 422: return {"validation_error", "Validation failed"};
    case 401: return {"authentication_required", "Authentication required"};
    case 403: return {"permission_denied", "Permission denied"};
    case 404: return {"resource_not_found", "Resource not found"};
    case 405: return {"method_not_allowed", "Method not allowed"};
    case 406: return {"not_acceptable", "Not acceptable"};
    case 408: return {"request_timeout", "Request timeout"};
    case 409: return {"resource_conflict", "Resource conflict"};
    case 410: return {"resource_gone", "Resource gone"};
    case 412: return {"precondition_failed", "Precondition failed"};
    case 413: return {"payload_too_large", "Payload too large"};
    case 415: return {"unsupported_media_type", "Unsupported media type"};
    case 429: return {"rate_limited", "Too many requests"};
    case 500: return {"internal_error", "Internal server error"};
    case 502:
    case 503:
    case 504: return {"upstream_unavailable", "Upstream unavailable"};
    default: break;
  }
  if (status >= 400 && status < 500) return {"client_error", "Client error"};
  return {"internal_error", "Internal server error"};
}

}  // namespace

CatalogEntry catalog_entry(int status, const Options& options) {
  const CatalogRow row = catalog_row(status, options);
  return {std::string(row.code), std::string(row.title)};
}

std::string_view catalog_code(int status, const Options& options) {
  return catalog_row(status, options).code;
}

void fill_type_and_title(Problem& p, const Options& options) {
  if (options.type_base) {
    p.type = *options.type_base + p.code;
    // The catalog title of the code: look the code up by status first (the usual case).
    const CatalogRow entry = catalog_row(p.status, options);
    p.title = entry.code == p.code ? entry.title : reason_phrase(p.status);
    if (entry.code != p.code) {
      // A rule or legacy table moved the parent code: find that code's own title.
      for (int s : {400, 401, 403, 404, 405, 406, 408, 409, 410, 412, 413, 415, 429, 500, 502}) {
        const CatalogRow e = catalog_row(s, options);
        if (e.code == p.code) {
          p.title = e.title;
          break;
        }
      }
    }
  } else {
    p.type = "about:blank";
    p.title = reason_phrase(p.status);
  }
}

Problem make_gateway_problem(core::GatewayError e, std::string_view instance,
                             std::string_view request_id, const Options& options,
                             std::string_view trace_id) {
  const auto info = core::gateway_error_info(e);
  Problem p;
  p.status = info.status;
  p.code = catalog_entry(info.status, options).code;
  p.subcode = std::string(info.subcode);
  p.detail = std::string(info.detail);
  p.instance = std::string(instance);
  p.request_id = std::string(request_id);
  p.set_trace_id(trace_id);
  fill_type_and_title(p, options);
  return p;
}

std::string_view negotiate_content_type(std::string_view accept) noexcept {
  if (accept.empty()) return core::hdr::kProblemJson;
  // Case-insensitive search without allocating.
  auto contains = [&](std::string_view needle) {
    if (needle.size() > accept.size()) return false;
    for (std::size_t i = 0; i + needle.size() <= accept.size(); ++i) {
      std::size_t k = 0;
      while (k < needle.size()) {
        char c = accept[i + k];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != needle[k]) break;
        ++k;
      }
      if (k == needle.size()) return true;
    }
    return false;
  };
  if (contains("application/problem+json") || contains("*/*") || contains("application/*"))
    return core::hdr::kProblemJson;
  if (contains("application/json")) return core::hdr::kJson;
  return core::hdr::kProblemJson;
}

std::string_view dialect_name(Dialect d) noexcept {
  switch (d) {
    case Dialect::automatic: return "auto";
    case Dialect::problem: return "problem";
    case Dialect::nested: return "nested";
    case Dialect::flat: return "flat";
    case Dialect::detail: return "detail";
    case Dialect::fieldmap: return "fieldmap";
    case Dialect::json: return "json";
    case Dialect::xml: return "xml";
    case Dialect::html: return "html";
    case Dialect::text: return "text";
    case Dialect::empty: return "empty";
    case Dialect::oversize: return "oversize";
  }
  return "auto";
}

std::optional<Dialect> parse_dialect(std::string_view name) noexcept {
  for (auto d : {Dialect::automatic, Dialect::problem, Dialect::nested, Dialect::flat,
                 Dialect::detail, Dialect::fieldmap, Dialect::json, Dialect::xml, Dialect::html,
                 Dialect::text, Dialect::empty}) {
    if (dialect_name(d) == name) return d;
  }
  return std::nullopt;
}

}  // namespace problemgate::problem
