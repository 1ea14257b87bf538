#include "problemgate/problem/normalize.hpp"

#include <array>
#include <charconv>
#include <cstring>

#include <simdjson.h>

#include "problem/code_case.hpp"
#include "problem/decode.hpp"
#include "problem/extract.hpp"
#include "problem/legacy_codes.hpp"
#include "problem/rules.hpp"

namespace problemgate::problem {

namespace {

using internal::Extract;

constexpr std::string_view kGeneric5xx = "The upstream service failed to handle the request.";
constexpr std::string_view kGenericUnavailable = "The upstream service is unavailable.";
/// The DOM parser's first allocation; it grows to the largest body seen.
constexpr std::size_t kInitialParserCapacity = 4096;

std::string_view generic_detail(int status) noexcept {
  return status >= 502 && status <= 504 ? kGenericUnavailable : kGeneric5xx;
}

/// Retry-After in delta-seconds; HTTP-dates are left to the proxy (this module has no clock).
std::optional<std::int64_t> delta_seconds(std::string_view header) noexcept {
  header = internal::trim(header);
  std::int64_t v = 0;
  auto r = std::from_chars(header.data(), header.data() + header.size(), v);
  if (header.empty() || r.ec != std::errc{} || r.ptr != header.data() + header.size() || v < 0)
    return std::nullopt;
  return v;
}

constexpr std::array kDetectionOrder{Dialect::problem, Dialect::nested,   Dialect::flat,
                                     Dialect::detail,  Dialect::fieldmap, Dialect::json,
                                     Dialect::xml,     Dialect::html,     Dialect::text};

}  // namespace

struct Normalizer::Impl {
  simdjson::dom::parser parser;
  std::string padded;   // body copy with SIMDJSON_PADDING spare bytes, reused
  std::string decoded;  // inflated body, reused

  Impl() {
    // Failure means no memory; parse() then reports MEMALLOC and the body falls to text.
    [[maybe_unused]] auto err = parser.allocate(kInitialParserCapacity, kMaxJsonDepth);
  }

  /// Parses `body` when it is a JSON object. The result lives until the next parse.
  std::optional<simdjson::dom::object> parse_object(std::string_view body) {
    auto t = internal::trim(body);
    if (t.starts_with("\xEF\xBB\xBF")) t.remove_prefix(3);
    if (t.empty() || t.front() != '{') return std::nullopt;
    padded.resize(t.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(padded.data(), t.data(), t.size());
    simdjson::dom::object root;
    if (parser.parse(padded.data(), t.size(), false).get(root) != simdjson::SUCCESS)
      return std::nullopt;
    return root;
  }

  Dialect detect(std::string_view body, const Input& in, Dialect pinned, Extract& ex) {
    if (pinned == Dialect::empty || internal::trim(body).empty()) return Dialect::empty;
    const internal::DialectInput din{in.status, in.content_type,
                                     internal::field_error_budget(body.size()),
                                     !in.trace_id.empty()};
    std::size_t start = 0;
    for (std::size_t i = 0; i < kDetectionOrder.size(); ++i)
      if (kDetectionOrder[i] == pinned) start = i;
    bool parsed = false;
    std::optional<simdjson::dom::object> root;
    for (std::size_t i = start; i < kDetectionOrder.size(); ++i) {
      const Dialect d = kDetectionOrder[i];
      bool fits = false;
      switch (d) {
        case Dialect::xml: fits = internal::read_xml(body, din, ex); break;
        case Dialect::html: fits = internal::read_html(body, din, ex); break;
        case Dialect::text: fits = internal::read_text(body, din, ex); break;
        default: {
          if (!parsed) {
            root = parse_object(body);
            parsed = true;
          }
          if (!root) continue;
          switch (d) {
            case Dialect::problem: fits = internal::read_problem(*root, din, ex); break;
            case Dialect::nested: fits = internal::read_nested(*root, din, ex); break;
            case Dialect::flat: fits = internal::read_flat(*root, din, ex); break;
            case Dialect::detail: fits = internal::read_detail(*root, din, ex); break;
            case Dialect::fieldmap: fits = internal::read_fieldmap(*root, din, ex); break;
            default: fits = internal::read_json(*root, din, ex); break;
          }
        }
      }
      if (fits) return d;
    }
    return Dialect::empty;
  }

  Output run(const Input& in, const Options& opts, const RouteOptions& route) {
    Output out;
    out.content_type = negotiate_content_type(in.accept);
    const auto encoding = internal::parse_encoding(in.content_encoding);
    if (encoding == internal::Encoding::unsupported) return out;
    // Status-only paths fill `out` itself: every return names `out`, so it is built in place
    // (a second Output returned here cost a move of the whole struct on every rewrite).
    if (encoding == internal::Encoding::identity && in.body.size() > opts.max_error_body) {
      fill_status_only(in, opts, route, Dialect::oversize, out);
      return out;
    }

    std::string_view body = in.body;
    if (encoding != internal::Encoding::identity) {
      const auto status = internal::inflate_body(in.body, encoding, opts.max_error_body, decoded);
      if (status == internal::DecodeStatus::ok) {
        body = decoded;
      } else if (status == internal::DecodeStatus::too_large) {
        fill_status_only(in, opts, route, Dialect::oversize,
                         out);  // spec §1: the cap applies after decoding
        return out;
      } else {
        body = {};
        out.body_undecodable = true;
      }
    }

    Extract ex;
    out.dialect = detect(body, in, route.dialect, ex);
    build(in, opts, route, ex, out);
    return out;
  }

  static void build(const Input& in, const Options& opts, const RouteOptions& route, Extract& ex,
                    Output& out) {
    Problem p;
    p.status = in.status;
    p.code = catalog_code(in.status, opts);
    p.instance = std::string(in.instance);
    p.request_id = std::string(in.request_id);
    p.set_trace_id(in.trace_id);

    // §3.2: the upstream code, the AWS header as a fallback, then the legacy table.
    if (ex.upstream_code.empty() && !in.amzn_error_type.empty())
      ex.upstream_code = std::string(internal::aws_error_name(in.amzn_error_type));
    bool mapped = false;
    if (!ex.upstream_code.empty() && !internal::is_numeric_code(ex.upstream_code)) {
      if (auto hit = internal::find_legacy_code(ex.upstream_code, opts)) {
        p.subcode = std::move(hit->subcode);
        if (!hit->code.empty()) p.code = std::move(hit->code);
        mapped = true;
      } else {
        p.subcode = internal::subcode_for(ex.upstream_code);
      }
      if (internal::repeats_reason_phrase(p.subcode, in.status)) p.subcode.clear();
    }

    // Type and title: an upstream problem's own, else derived from the (final) code.
    const bool upstream_type = ex.type.has_value();
    fill_type_and_title(p, opts);
    if (upstream_type) p.type = *ex.type;
    if (ex.title) p.title = *ex.title;

    // §3.4: 5xx detail is generic unless exposed; markup and text never leak.
    const bool hide = in.status >= 500 && (ex.detail_is_markup || !opts.expose_5xx_detail);
    if (in.status >= 500) {
      if (hide) {
        p.detail = std::string(generic_detail(in.status));
        out.hidden_detail = ex.detail;
      } else {
        p.detail = ex.detail ? ex.detail
                             : std::optional<std::string>(std::string(generic_detail(in.status)));
      }
    } else {
      p.detail = ex.detail;
    }
    p.errors = std::move(ex.errors).take();
    if (hide) {
      for (auto& e : p.errors) e.message.reset();
    }
    p.extensions = std::move(ex.extensions);

    const Rule* rule = internal::apply_rules(
        route.rules, {out.dialect, ex.upstream_code, ex.detail ? std::string_view(*ex.detail) : ""},
        opts, upstream_type || ex.title.has_value(), p);
    if (rule && (rule->set.code || rule->set.subcode)) mapped = true;

    if (in.status == 429 || in.status == 503) {
      p.retry_after = ex.retry_after ? ex.retry_after : delta_seconds(in.retry_after_header);
    }

    out.rewritten = true;
    out.body.reserve(256 + p.extensions.size());
    write_problem(p, out.body);
    out.code = std::move(p.code);
    out.subcode = p.subcode == out.code ? std::string() : std::move(p.subcode);
    out.rate_limit = ex.rate_limit;
    out.retry_after = p.retry_after;
    out.upstream_code = std::move(ex.upstream_code);
    out.code_mapped = mapped;
  }

  /// Status-derived members only: an oversize body (route rules apply), or the last resort when
  /// something threw (no rules: they may be what threw).
  static void fill_status_only(const Input& in, const Options& opts, const RouteOptions& route,
                               Dialect d, Output& out) {
    out.content_type = negotiate_content_type(in.accept);
    out.dialect = d;
    Extract ex;
    build(in, opts, route, ex, out);
  }

  static Output status_only(const Input& in, const Options& opts, const RouteOptions& route,
                            Dialect d) {
    Output out;
    fill_status_only(in, opts, route, d, out);
    return out;
  }
};

Normalizer::Normalizer() : impl_(std::make_unique<Impl>()) {}
Normalizer::~Normalizer() = default;

Output Normalizer::normalize(const Input& in, const Options& opts,
                             const RouteOptions& route) noexcept {
  try {
    return impl_->run(in, opts, route);
  } catch (...) {
    // Only allocation failure is expected here; the fallback may throw it again and terminate.
    return Impl::status_only(in, opts, RouteOptions{}, Dialect::empty);
  }
}

Output oversize_problem(const Input& in, const Options& opts, const RouteOptions& route) noexcept {
  try {
    return Normalizer::Impl::status_only(in, opts, route, Dialect::oversize);
  } catch (...) {
    return Normalizer::Impl::status_only(in, opts, RouteOptions{}, Dialect::oversize);
  }
}

Output normalize(const Input& in, const Options& opts, const RouteOptions& route) noexcept {
  thread_local Normalizer normalizer;
  return normalizer.normalize(in, opts, route);
}

}  // namespace problemgate::problem
