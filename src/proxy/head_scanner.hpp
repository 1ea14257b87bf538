#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace problemgate::proxy {

/// What the raw-bytes check of a message head found. Beast 1.81 accepts several framing
/// ambiguities (see README, "Framing safety"), so every head is checked here before Beast
/// parses it.
enum class HeadVerdict {
  incomplete,         ///< no CRLFCRLF yet and no limit crossed: read more
  ok,                 ///< a complete, unambiguous head of `head_bytes` bytes
  malformed,          ///< 400: syntax, bare LF, obs-fold, CL+TE, bad/duplicate CL, Host rules
  uri_too_long,       ///< 414: request line over max_line
  too_large,          ///< 431: head over max_bytes or more than max_fields fields
  not_implemented,    ///< 501: a transfer coding we do not implement
};

struct HeadLimits {
  std::size_t max_line = 8 * 1024;
  std::size_t max_bytes = 32 * 1024;
  std::size_t max_fields = 100;
};

struct HeadScan {
  HeadVerdict verdict = HeadVerdict::incomplete;
  std::size_t head_bytes = 0;  ///< with the final CRLFCRLF, when ok
  /// Framing facts, valid when ok.
  bool chunked = false;
  bool has_content_length = false;
  std::uint64_t content_length = 0;
  int version_minor = 1;
};

/// Checks a request head at the start of `buf` (RFC 9112 and README "Framing safety" rules).
HeadScan scan_request_head(std::string_view buf, const HeadLimits& limits) noexcept;

/// The same checks for an upstream response head (no Host rules, status line syntax).
HeadScan scan_response_head(std::string_view buf, const HeadLimits& limits) noexcept;

}  // namespace problemgate::proxy
