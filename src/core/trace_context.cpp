#include "problemgate/core/trace_context.hpp"

#include <bit>
#include <cstring>

namespace problemgate::core {

namespace {

constexpr char kHex[] = "0123456789abcdef";

bool lower_hex(std::string_view s) noexcept {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool all_zero(std::string_view s) noexcept {
  return s.find_first_not_of('0') == std::string_view::npos;
}

int hex_value(char c) noexcept { return c <= '9' ? c - '0' : c - 'a' + 10; }

/// The 8 lowercase hex digits of `v` into dst[0..8), branch-free (SWAR): each nibble is spread
/// into a byte of its own, then turned into '0'-'9' or 'a'-'f' all at once. Runs per request.
void hex8(std::uint32_t v, char* dst) noexcept {
  std::uint64_t x = v;
  x = ((x & 0xFFFF0000u) << 16) | (x & 0xFFFFu);
  x = ((x & 0x0000FF000000FF00ull) << 8) | (x & 0x000000FF000000FFull);
  x = ((x & 0x00F000F000F000F0ull) << 4) | (x & 0x000F000F000F000Full);
  // Bytes >= 10 get 'a' - '0' - 10 more.
  const std::uint64_t letters = ((x + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;
  x += 0x3030303030303030ull + letters * 0x27;
  // The most significant nibble is in the highest byte: written first, as one 8-byte store.
  if constexpr (std::endian::native == std::endian::little)
    x = __builtin_bswap64(x);
  else
    for (int i = 0; i < 8; ++i) dst[i] = static_cast<char>(x >> (56 - 8 * i));
  if constexpr (std::endian::native == std::endian::little) std::memcpy(dst, &x, 8);
}

}  // namespace

bool parse_traceparent(std::string_view v, TraceParent& out) noexcept {
  // Optional whitespace around a field value is not part of it (RFC 9110 §5.5).
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.size() < 55) return false;
  const std::string_view version = v.substr(0, 2);
  if (!lower_hex(version) || version == "ff") return false;
  if (version == "00") {
    if (v.size() != 55) return false;
  } else if (v.size() > 55 && v[55] != '-') {
    return false;  // a future version may append fields, always after a '-'
  }
  if (v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  const std::string_view trace = v.substr(3, 32), parent = v.substr(36, 16),
                         flags = v.substr(53, 2);
  if (!lower_hex(trace) || !lower_hex(parent) || !lower_hex(flags)) return false;
  if (all_zero(trace) || all_zero(parent)) return false;
  trace.copy(out.trace_id.data(), 32);
  parent.copy(out.parent_id.data(), 16);
  out.flags = static_cast<std::uint8_t>(hex_value(flags[0]) * 16 + hex_value(flags[1]));
  return true;
}

void format_traceparent(std::string_view trace_id, std::string_view span_id, std::uint8_t flags,
                        std::string& out) {
  out.assign("00-", 3);
  out.append(trace_id);
  out.push_back('-');
  out.append(span_id);
  out.push_back('-');
  out.push_back(kHex[flags >> 4]);
  out.push_back(kHex[flags & 0xF]);
}

void random_hex_id(std::uint64_t r1, std::uint64_t r2, char* dst, std::size_t n) noexcept {
  if (n == 8) {
    if (r1 == 0) r1 = 1;
  } else if (r1 == 0 && r2 == 0) {
    r2 = 1;
  }
  hex8(static_cast<std::uint32_t>(r1 >> 32), dst);
  hex8(static_cast<std::uint32_t>(r1), dst + 8);
  if (n == 16) {
    hex8(static_cast<std::uint32_t>(r2 >> 32), dst + 16);
    hex8(static_cast<std::uint32_t>(r2), dst + 24);
  }
}

}  // namespace problemgate::core
