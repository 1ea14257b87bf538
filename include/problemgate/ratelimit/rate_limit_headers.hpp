#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "problemgate/config/config.hpp"
#include "problemgate/ratelimit/rate_limiter.hpp"

namespace problemgate::ratelimit {

/// Rate-limit information an upstream reported. Every member is optional; absent = not reported
/// or unparseable.
struct UpstreamLimit {
  std::optional<std::uint64_t> limit;
  std::optional<std::uint64_t> remaining;     ///< negative upstream values clamp to 0
  std::optional<std::int64_t> reset_epoch_s;  ///< always normalized to Unix seconds
  std::optional<std::int64_t> retry_after_s;  ///< seconds from now, >= 0
  bool any() const noexcept { return limit || remaining || reset_epoch_s || retry_after_s; }
};

/// An X-RateLimit-Reset style number as Unix seconds: above 1e11 it is taken as epoch
/// milliseconds, above 1e9 as epoch seconds, else as seconds from `now_s` (Envoy, Kong, and
/// GitHub/seed 001 conventions all coexist in the wild).
std::int64_t reset_to_epoch(std::uint64_t value, std::int64_t now_s) noexcept;

/// Parses an upstream's X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset and
/// Retry-After values ("" = absent). Surrounding whitespace is ignored; garbage, overflow and
/// negative limits give nullopt for that member only. Reset and Retry-After accept a decimal
/// fraction (rounded up). Retry-After is delta-seconds or an IMF-fixdate
/// ("Sun, 06 Nov 1994 08:49:37 GMT"; the obsolete RFC 850/asctime forms are ignored); a date in
/// the past gives 0. Never throws, never allocates.
UpstreamLimit parse_upstream_headers(std::string_view limit, std::string_view remaining,
                                     std::string_view reset, std::string_view retry_after,
                                     std::int64_t now_s) noexcept;

/// Fills members `into` lacks from `from`; e.g. header values first, then the flat dialect's
/// body members (spec §4 item 3).
void merge_missing(UpstreamLimit& into, const UpstreamLimit& from) noexcept;

/// One response header to set. `name` points at a constant in core/header_names.hpp.
struct HeaderField {
  std::string_view name;
  std::string value;  // short enough for std::string's small buffer in the X-RateLimit case
};

/// Window of a policy in whole seconds (rounded up, >= 1), for RateLimit-Policy's `w`.
std::int64_t window_seconds(const config::RateLimitPolicy& policy) noexcept;

/// Appends the rate-limit headers for a response to `out` (spec §6). The caller must *set*
/// (replace) them on the response, since an upstream's own copies may already be there.
///
/// `gateway` is this route's decision (nullptr without a policy); `upstream` is what the upstream
/// reported (nullptr or !any() when nothing).
/// - One source: it is shown as is (upstream: only the members it reported).
/// - Both: the stricter is shown, i.e. the lower remaining; on a tie the later reset, and the
///   upstream when that ties too (a proxy never makes an upstream's limit look more permissive).
///   If the upstream wins but did not report limit or reset, the gateway's fill the gap so a
///   limited route always carries all three X-RateLimit fields. An upstream that reported no
///   remaining cannot be compared and the gateway's triple is shown.
/// - Retry-After: the larger of the gateway's (when denied) and the upstream's.
/// - Format: x_ratelimit -> X-RateLimit-Limit/-Remaining/-Reset (reset epoch or delta per
///   `format.reset`); ietf -> `RateLimit-Policy: "NAME";q=LIMIT;w=WINDOW_S` (plus
///   `"upstream";q=N` when the upstream reported a limit; its window is unknown) and
///   `RateLimit: "NAME";r=REMAINING;t=RESET_DELTA_S` for the shown source (NAME = `policy_name`
///   for the gateway, "upstream" for the upstream; `t` omitted when no reset is known);
///   both -> both sets.
void build_headers(const Decision* gateway, const UpstreamLimit* upstream,
                   std::string_view policy_name, std::int64_t window_s,
                   const config::RateLimitHeaders& format, std::int64_t now_s,
                   std::vector<HeaderField>& out);

/// The RateLimit-Policy / RateLimit item name used for the upstream's limit.
inline constexpr std::string_view kUpstreamPolicyName = "upstream";

}  // namespace problemgate::ratelimit
