#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "problemgate/problem/options.hpp"
#include "problemgate/problem/problem.hpp"

namespace problemgate::problem {

/// One upstream error response, as the proxy saw it. Views only; nothing is kept after the call.
struct Input {
  int status = 500;
  std::string_view content_type;  ///< upstream Content-Type ("" if none)
  std::string_view
      content_encoding;  ///< "", "identity", "gzip"/"x-gzip", "deflate"; else pass-through
  std::string_view amzn_error_type;  ///< X-Amzn-ErrorType header or ""
  std::string_view body;             ///< raw bytes as received (maybe compressed)
  std::string_view instance;         ///< request path without query
  std::string_view request_id;
  std::string_view trace_id;  ///< W3C trace id ("" if none): the body's `traceId`
  std::string_view accept;    ///< request Accept, for content negotiation
  std::string_view
      retry_after_header;  ///< upstream Retry-After ("" if none); used when delta-seconds
};

/// Rate-limit members of a flat-dialect body (spec §4.3, §6), as the upstream gave them.
struct UpstreamRateLimit {
  std::optional<std::int64_t> limit, remaining, reset, retry_after;
};

/// The result of normalize(). When `rewritten` is false the caller passes the original response
/// through untouched (an unsupported Content-Encoding). A body over max_error_body (for gzip and
/// deflate, its decoded size) is not read: the problem is built from the status alone, with
/// dialect `oversize` (spec §1).
struct Output {
  bool rewritten = false;
  std::string body;                  ///< canonical problem+json bytes (empty when !rewritten)
  std::string_view content_type;     ///< negotiate_content_type(accept); static storage
  Dialect dialect = Dialect::empty;  ///< the dialect that matched
  std::string code, subcode;         ///< as written in body (subcode "" when absent)
  std::optional<std::string>
      hidden_detail;                        ///< upstream detail hidden from a 5xx client (log only)
  UpstreamRateLimit rate_limit;             ///< flat dialect's retry_after/limit/remaining/reset
  std::optional<std::int64_t> retry_after;  ///< what went into retryAfter
  bool body_undecodable = false;            ///< gzip/deflate body corrupt: status-only problem
  std::string upstream_code;                ///< the upstream's own code as written ("" when none)
  bool code_mapped = false;                 ///< the legacy table or a rule decided code or subcode
};

Output oversize_problem(const Input& in, const Options& opts, const RouteOptions& route) noexcept;

/// Rewrites an upstream error body into the canonical problem (spec §1-§4, §7).
///
/// Total: any bytes give a valid problem+json body whose `status` is `in.status` (only
/// allocation failure can escape, and then noexcept terminates). Holds a JSON parser and scratch
/// buffers reused across calls, so keep one per worker thread. Not thread-safe.
///
/// JSON objects with duplicate keys: the first occurrence wins. JSON nesting deeper than
/// kMaxJsonDepth is treated as invalid JSON (the body falls to a later dialect).
class Normalizer {
 public:
  static constexpr std::size_t kMaxJsonDepth = 64;

  Normalizer();
  ~Normalizer();
  Normalizer(const Normalizer&) = delete;
  Normalizer& operator=(const Normalizer&) = delete;

  Output normalize(const Input& in, const Options& opts, const RouteOptions& route) noexcept;

 private:
  struct Impl;
  friend Output oversize_problem(const Input& in, const Options& opts,
                                 const RouteOptions& route) noexcept;
  std::unique_ptr<Impl> impl_;
};

/// The problem for an error body over max_error_body that was not read (spec §1): status-derived
/// members only (rules still apply), dialect `oversize`. Pure; allocates only the output.
Output oversize_problem(const Input& in, const Options& opts, const RouteOptions& route) noexcept;

/// normalize() through a thread_local Normalizer. Same contract.
Output normalize(const Input& in, const Options& opts, const RouteOptions& route) noexcept;

/// Converts an upstream code to lowercase_snake_case (spec §3.2): `invalidGrant` -> `invalid_grant`,
/// `ResourceNotFoundException` -> `resource_not_found_exception`. "" when nothing is left.
std::string to_snake_case(std::string_view code);

/// Every subcode the legacy table can produce by name (the default table and the exact entries
/// of `options.legacy_codes` with a subcode), appended to `out`: the bounded set of subcode
/// label values (telemetry.subcode_labels' default).
void known_subcodes(const Options& options, std::vector<std::string>& out);

}  // namespace problemgate::problem
