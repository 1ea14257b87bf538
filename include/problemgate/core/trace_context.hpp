#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace problemgate::core {

/// A W3C Trace Context (https://www.w3.org/TR/trace-context/) position: the trace, the span
/// that sent the request, and the trace flags. Ids are kept as lowercase hex text, the form
/// they travel and are logged in, so nothing is formatted per request.
struct TraceParent {
  std::array<char, 32> trace_id{};
  std::array<char, 16> parent_id{};
  std::uint8_t flags = 0;

  std::string_view trace_id_view() const noexcept { return {trace_id.data(), trace_id.size()}; }
  std::string_view parent_id_view() const noexcept { return {parent_id.data(), parent_id.size()}; }
};

/// Parses a `traceparent` field value strictly (W3C Trace Context level 1, §3.2): version `00`,
/// exactly `00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex>`, trace id and parent
/// id not all zero. A higher version is read by its version-00 prefix, as the spec asks, when
/// what follows the flags starts with `-`. Returns false (and leaves `out` unspecified) for
/// anything else: the caller starts a new trace and drops `tracestate`.
bool parse_traceparent(std::string_view value, TraceParent& out) noexcept;

/// `00-<trace id>-<span id>-<flags>` (55 characters) into `out` (replacing its contents).
void format_traceparent(std::string_view trace_id, std::string_view span_id, std::uint8_t flags,
                        std::string& out);

/// `n` random bytes as 2n lowercase hex characters into `dst`, from `r1`, `r2` (64 bits each,
/// the caller's random source, most significant first); n is 16 (trace id, r1 then r2) or 8
/// (span id, r1). Never all zero: an all-zero draw is replaced by 1.
void random_hex_id(std::uint64_t r1, std::uint64_t r2, char* dst, std::size_t n) noexcept;

}  // namespace problemgate::core
