#include "problemgate/core/json_escape.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace problemgate::core {

namespace {

/// Length of the run at the start of `s` that needs no escaping (printable ASCII other than
/// '"' and '\\'). Log lines and problem bodies are mostly such runs, so on x86-64 this checks
/// 16 bytes per step.
std::size_t plain_run(std::string_view s) noexcept {
  std::size_t j = 0;
#if defined(__SSE2__)
  const __m128i k1f = _mm_set1_epi8(0x1F);
  const __m128i kquote = _mm_set1_epi8('"');
  const __m128i kbslash = _mm_set1_epi8('\\');
  const __m128i zero = _mm_setzero_si128();
  // Bit i set: byte i of the 16 at `p` needs escaping, or is >= 0x80 (its sign bit: UTF-8,
  // checked by the slow path).
  auto special_mask = [&](const char* p) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i special =
        _mm_or_si128(_mm_cmpeq_epi8(_mm_subs_epu8(v, k1f), zero),
                     _mm_or_si128(_mm_cmpeq_epi8(v, kquote), _mm_cmpeq_epi8(v, kbslash)));
    return static_cast<unsigned>(_mm_movemask_epi8(special) | _mm_movemask_epi8(v));
  };
  while (s.size() - j >= 16) {
    const unsigned mask = special_mask(s.data() + j);
    if (mask != 0) return j + static_cast<std::size_t>(__builtin_ctz(mask));
    j += 16;
  }
  if (j < s.size() && s.size() >= 16) {
    // The tail, as the last 16 bytes (overlapping what is already known plain) rather than
    // byte by byte: most strings end in such a tail.
    const std::size_t base = s.size() - 16;
    const unsigned mask = special_mask(s.data() + base) >> (j - base);
    if (mask == 0) return s.size();
    return j + static_cast<std::size_t>(__builtin_ctz(mask));
  }
#endif
  while (j < s.size()) {
    const auto c = static_cast<unsigned char>(s[j]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
    ++j;
  }
  return j;
}

}  // namespace

std::size_t utf8_sequence_length(std::string_view s) noexcept {
  if (s.empty()) return 0;
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  std::size_t n;
  std::uint32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4;
    min = 0x10000;
  } else
    return 0;
  if (s.size() < n) return 0;
  std::uint32_t cp = b0 & (0x7F >> n);
  for (std::size_t i = 1; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

void append_json_escaped(std::string& out, std::string_view s, std::size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  if (max_bytes < s.size()) s = s.substr(0, max_bytes);
  std::size_t i = plain_run(s);
  out.append(s.data(), i);  // most strings are one plain run: done in one append
  while (i < s.size()) {
    // Fast path: copy a run of plain printable ASCII at once.
    const std::size_t j = i + plain_run(s.substr(i));
    out.append(s.data() + i, j - i);
    i = j;
    if (i >= s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') {
      out += "\\\"";
      ++i;
      continue;
    }
    if (c == '\\') {
      out += "\\\\";
      ++i;
      continue;
    }
    if (c < 0x20) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
      }
      ++i;
      continue;
    }
    const std::size_t n = utf8_sequence_length(s.substr(i));
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD for each invalid byte
      ++i;
      continue;
    }
    // U+2028/U+2029 are valid JSON but break JavaScript and line-based log readers.
    if (n == 3 && c == 0xE2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(s[i + 2]) == 0xA8 ||
         static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
      out += static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
    } else {
      out.append(s.data() + i, n);
    }
    i += n;
  }
}

}  // namespace problemgate::core
