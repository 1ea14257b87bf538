#include "proxy/session_internal.hpp"

namespace problemgate::proxy {

bool Session::rewrite_error(const Runtime& rt, const http1::HeadView& res, int status,
                            bool complete, obs::RouteCounters& route_counters) {
  const auto& route = *ex_.route;
  problem::Input in;
  in.status = status;
  in.content_type = res.get("content-type");
  in.content_encoding = res.get("content-encoding");
  in.amzn_error_type = res.get(core::hdr::kAmznErrorType);
  // Retry-After as parsed from the head (HTTP-dates and fractions as whole seconds from now),
  // so the body's retryAfter agrees with the Retry-After header the rate-limit fields carry.
  char retry_buf[24];
  in.retry_after_header = res.get("retry-after");
  if (ex_.upstream_limit.retry_after_s) {
    const auto r =
        std::to_chars(retry_buf, retry_buf + sizeof retry_buf, *ex_.upstream_limit.retry_after_s);
    in.retry_after_header =
        std::string_view(retry_buf, static_cast<std::size_t>(r.ptr - retry_buf));
  }
  in.instance = ex_.path;
  in.request_id = ex_.request_id;
  in.trace_id = trace_id();
  in.accept = ex_.accept;
  if (complete) {
    in.body = ex_.error_body;
    ex_.normalized = worker_.normalizer().normalize(in, rt.config.problem, route.problem);
  } else {
    // Over problem.max_error_body (spec §1): what was read is not parsed; status-only problem.
    ex_.normalized = problem::oversize_problem(in, rt.config.problem, route.problem);
  }
  auto& out = ex_.normalized;
  if (!out.rewritten) return false;
  // Also a complete compressed body that inflates past the cap.
  if (out.dialect == problem::Dialect::oversize) obs::bump(route_counters.oversized_errors);
  ex_.dialect = problem::dialect_name(out.dialect);
  ex_.code = out.code;
  ex_.subcode = out.subcode;
  if (out.hidden_detail) {
    // The log keeps the whole 5xx text (up to telemetry.max_logged_detail, capped when written):
    // for a plain-text body (a stack trace) that is the body itself, not its first line.
    const std::size_t cap = rt.config.telemetry.max_logged_detail;
    if (out.dialect == problem::Dialect::text && complete && in.content_encoding.empty())
      ex_.hidden_detail.assign(std::string_view(ex_.error_body).substr(0, cap + 4));
    else
      ex_.hidden_detail.assign(std::string_view(*out.hidden_detail).substr(0, cap + 4));
  }
  // Label values stay bounded: a subcode outside telemetry.subcode_labels (or the legacy
  // table) is counted as `other`; the access log keeps the real one.
  worker_.metrics().count_rewrite(route.name, ex_.dialect, ex_.code, rt.subcode_label(ex_.subcode));
  if (out.dialect == problem::Dialect::text) obs::bump(route_counters.unrecognised_bodies);
  merge_body_rate_limit(out);
  return true;
}

void Session::merge_body_rate_limit(const problem::Output& out) {
  // Upstream rate-limit facts found in the body (flat dialect) fill what headers lacked.
  ratelimit::UpstreamLimit from_body;
  const auto now_s = worker_.shared().clock.now_ns() / 1'000'000'000;
  if (out.rate_limit.limit && *out.rate_limit.limit >= 0)
    from_body.limit = static_cast<std::uint64_t>(*out.rate_limit.limit);
  if (out.rate_limit.remaining)
    from_body.remaining =
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, *out.rate_limit.remaining));
  if (out.rate_limit.reset && *out.rate_limit.reset >= 0)
    from_body.reset_epoch_s =
        ratelimit::reset_to_epoch(static_cast<std::uint64_t>(*out.rate_limit.reset), now_s);
  if (out.retry_after) from_body.retry_after_s = *out.retry_after;
  ratelimit::merge_missing(ex_.upstream_limit, from_body);
}

}  // namespace problemgate::proxy
