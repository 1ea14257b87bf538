#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace problemgate::http1 {

/// What the raw-bytes check of a message head found. This scanner is the only parser of heads
/// on the data path (Beast 1.81 accepts several framing ambiguities, see README "Framing
/// safety"); it also records where each field is, so heads are forwarded without a copy into
/// a field container.
enum class HeadVerdict {
  incomplete,       ///< no CRLFCRLF yet and no limit crossed: read more
  ok,               ///< a complete, unambiguous head of `head_bytes` bytes
  malformed,        ///< 400: syntax, bare LF, obs-fold, CL+TE, bad/duplicate CL, Host rules
  uri_too_long,     ///< 414: request line over max_line
  too_large,        ///< 431: head over max_bytes or more than max_fields fields
  not_implemented,  ///< 501: a transfer coding we do not implement
};

struct HeadLimits {
  std::size_t max_line = 8 * 1024;
  std::size_t max_bytes = 32 * 1024;
  std::size_t max_fields = 100;
};

/// Where one field line's name and (OWS-trimmed) value are, as offsets from the head's start.
struct FieldSpan {
  std::uint32_t name_off = 0;
  std::uint32_t name_len = 0;
  std::uint32_t value_off = 0;
  std::uint32_t value_len = 0;
};

struct HeadScan {
  HeadVerdict verdict = HeadVerdict::incomplete;
  std::size_t head_bytes = 0;  ///< with the final CRLFCRLF, when ok
  /// Framing facts, valid when ok.
  bool chunked = false;
  bool has_content_length = false;
  std::uint64_t content_length = 0;
  int version_minor = 1;
  /// Start line, valid when ok. Request: method is [0, method_len), target at target_off.
  /// Response: the status code and the reason phrase at reason_off (may be empty).
  std::uint32_t method_len = 0;
  std::uint32_t target_off = 0;
  std::uint32_t target_len = 0;
  int status = 0;
  std::uint32_t reason_off = 0;
  std::uint32_t reason_len = 0;
};

/// Checks a request head at the start of `buf` (RFC 9112 and README "Framing safety" rules).
/// When `fields` is given and the head is ok, it holds every field line's span, in order (it is
/// cleared first; a failed allocation makes the head too_large).
HeadScan scan_request_head(std::string_view buf, const HeadLimits& limits,
                           std::vector<FieldSpan>* fields = nullptr) noexcept;

/// The same checks for an upstream response head (no Host rules, status line syntax).
HeadScan scan_response_head(std::string_view buf, const HeadLimits& limits,
                            std::vector<FieldSpan>* fields = nullptr) noexcept;

}  // namespace problemgate::http1
