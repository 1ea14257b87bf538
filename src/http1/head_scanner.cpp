#include "problemgate/http1/head_scanner.hpp"

#include "problemgate/core/request_target.hpp"
#include "problemgate/http1/head_view.hpp"  // iequals

#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace problemgate::http1 {

namespace {

// Byte classes, looked up once per byte (the scanner runs on every request and response head).
constexpr unsigned char kTchar = 1;      // token character (RFC 9110 §5.6.2)
constexpr unsigned char kFieldByte = 2;  // allowed in a field value: VCHAR, obs-text, SP, HTAB

constexpr std::array<unsigned char, 256> make_classes() {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool tchar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' ||
                       c == '*' || c == '+' || c == '-' || c == '.' || c == '^' || c == '_' ||
                       c == '`' || c == '|' || c == '~';
    const bool field = !((c < 0x20 && c != '\t') || c == 0x7F);
    t[static_cast<std::size_t>(c)] =
        static_cast<unsigned char>((tchar ? kTchar : 0) | (field ? kFieldByte : 0));
  }
  return t;
}
constexpr std::array<unsigned char, 256> kClasses = make_classes();

constexpr bool is_tchar(unsigned char c) noexcept { return kClasses[c] & kTchar; }
constexpr bool is_field_byte(unsigned char c) noexcept { return kClasses[c] & kFieldByte; }

/// The first byte in [p, end) that may not appear in a field value (a control other than HTAB,
/// or DEL; CR ends a well-formed value), or `end`. Values are most of a head's bytes, so on
/// x86-64 this looks at 16 bytes per step.
const char* skip_field_bytes(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  const __m128i k1f = _mm_set1_epi8(0x1F);
  const __m128i ktab = _mm_set1_epi8('\t');
  const __m128i kdel = _mm_set1_epi8(0x7F);
  const __m128i zero = _mm_setzero_si128();
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i ctl = _mm_cmpeq_epi8(_mm_subs_epu8(v, k1f), zero);  // v <= 0x1F (unsigned)
    const __m128i bad =
        _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, ktab), ctl), _mm_cmpeq_epi8(v, kdel));
    const int mask = _mm_movemask_epi8(bad);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end && is_field_byte(static_cast<unsigned char>(*p))) ++p;
  return p;
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_known_coding(std::string_view c) noexcept {
  return iequals(c, "chunked") || iequals(c, "gzip") || iequals(c, "x-gzip") ||
         iequals(c, "deflate") || iequals(c, "compress") || iequals(c, "x-compress") ||
         iequals(c, "identity");
}

/// Locates the end of the head. Returns the offset just past CRLFCRLF, 0 when not found yet.
/// A bare LF anywhere before that is reported through `bare_lf`.
std::size_t find_head_end(std::string_view buf, bool& bare_lf) noexcept {
  const char* const begin = buf.data();
  const char* const end = begin + buf.size();
  for (const char* p = begin; p < end; ++p) {
    p = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (!p) return 0;
    const std::size_t i = static_cast<std::size_t>(p - begin);
    if (i == 0 || buf[i - 1] != '\r') {
      bare_lf = true;
      return 0;
    }
    if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') return i + 1;
  }
  return 0;
}

struct FieldFacts {
  int host_count = 0;
  bool host_bad = false;  // not uri-host [":" port]
  int content_length_count = 0;
  bool content_length_bad = false;
  std::uint64_t content_length = 0;
  bool has_te = false;
  bool te_chunked_only = true;  // the whole TE list is exactly one "chunked"
  bool te_unknown = false;
  int te_chunked_count = 0;
  int te_codings = 0;
};

void note_transfer_encoding(std::string_view value, FieldFacts& f) noexcept {
  f.has_te = true;
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view item = trim_ows(value.substr(start, comma - start));
    // Parameters after ';' are not allowed on chunked; treat them as part of the name.
    if (!item.empty()) {
      ++f.te_codings;
      if (iequals(item, "chunked")) {
        ++f.te_chunked_count;
      } else {
        f.te_chunked_only = false;
        if (!is_known_coding(item)) f.te_unknown = true;
      }
    } else {
      f.te_chunked_only = false;  // empty list element
    }
    start = comma + 1;
  }
}

/// `#token` lists (RFC 9110 §5.6.1) as Beast validates them for Connection and
/// Proxy-Connection: elements are tokens or empty, separated by commas with optional
/// whitespace. Anything else is rejected here, so an `ok` head never fails in Beast later.
bool is_token_list(std::string_view value) noexcept {
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    for (unsigned char c : trim_ows(value.substr(start, comma - start)))
      if (!is_tchar(c)) return false;
    start = comma + 1;
  }
  return true;
}

void note_content_length(std::string_view value, FieldFacts& f) noexcept {
  ++f.content_length_count;
  value = trim_ows(value);
  if (value.empty() || value.size() > 19) {
    f.content_length_bad = true;
    return;
  }
  std::uint64_t v = 0;
  for (char c : value) {
    if (c < '0' || c > '9') {
      f.content_length_bad = true;
      return;
    }
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  f.content_length = v;
}

/// Longest field line accepted: Beast's 65535-byte element limit less its 2 bytes of overhead
/// and 64 bytes for the ", <peer address>" the session appends to X-Forwarded-For.
constexpr std::size_t kMaxFieldLine = 65535 - 2 - 64;

/// Checks the field lines from `pos` to the end of `head` (which ends with the blank line), in
/// one pass per line: name bytes against the token table up to the colon, value bytes against
/// the field-byte table up to the CRLF (a control byte, bare CR or NUL stops it short).
HeadVerdict scan_fields(std::string_view head, std::size_t pos, const HeadLimits& limits,
                        FieldFacts& facts, std::vector<FieldSpan>* spans) noexcept {
  if (spans) spans->clear();
  std::size_t fields = 0;
  const char* const base = head.data();
  const char* const end = base + head.size();
  const char* p = base + pos;
  for (;;) {
    if (end - p < 2) return HeadVerdict::malformed;
    if (p[0] == '\r') return p[1] == '\n' ? HeadVerdict::ok : HeadVerdict::malformed;  // blank line
    const char* const line = p;
    if (++fields > limits.max_fields) return HeadVerdict::too_large;
    if (*p == ' ' || *p == '\t') return HeadVerdict::malformed;  // obs-fold
    while (p < end && is_tchar(static_cast<unsigned char>(*p))) ++p;
    // Also rejects an empty name and space before the colon.
    if (p == line || p == end || *p != ':') return HeadVerdict::malformed;
    std::string_view name(line, static_cast<std::size_t>(p - line));
    const char* const value_begin = ++p;
    // field-vchar / obs-text / SP / HTAB only: no NUL, CR, LF or other controls.
    p = skip_field_bytes(p, end);
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n') return HeadVerdict::malformed;
    // Beast stores a field's name and value lengths in 16 bits and throws past that; the
    // session also appends to X-Forwarded-For. Any longer field is 431, with room left.
    if (static_cast<std::size_t>(p - line) > kMaxFieldLine) return HeadVerdict::too_large;
    std::string_view value =
        trim_ows(std::string_view(value_begin, static_cast<std::size_t>(p - value_begin)));
    p += 2;
    if (spans) {
      try {
        spans->push_back(FieldSpan{static_cast<std::uint32_t>(name.data() - base),
                                   static_cast<std::uint32_t>(name.size()),
                                   static_cast<std::uint32_t>(value.data() - base),
                                   static_cast<std::uint32_t>(value.size())});
      } catch (...) {
        return HeadVerdict::too_large;
      }
    }
    switch (name.size()) {
      case 4:
        if (iequals(name, "host")) {
          ++facts.host_count;
          if (!core::is_valid_authority(value)) facts.host_bad = true;
        }
        break;
      case 10:
        if (iequals(name, "connection") && !is_token_list(value)) return HeadVerdict::malformed;
        break;
      case 14:
        if (iequals(name, "content-length")) note_content_length(value, facts);
        break;
      case 16:
        if (iequals(name, "proxy-connection") && !is_token_list(value))
          return HeadVerdict::malformed;
        break;
      case 17:
        if (iequals(name, "transfer-encoding")) note_transfer_encoding(value, facts);
        break;
      default: break;
    }
  }
}

/// Applies the framing rules shared by requests and responses.
HeadVerdict check_framing(const FieldFacts& f, int version_minor, HeadScan& out) noexcept {
  if (f.content_length_bad) return HeadVerdict::malformed;
  if (f.content_length_count > 1) return HeadVerdict::malformed;  // duplicates, equal or not
  if (f.has_te) {
    if (f.content_length_count > 0) return HeadVerdict::malformed;  // CL + TE
    if (version_minor == 0) return HeadVerdict::malformed;          // TE on HTTP/1.0
    if (f.te_unknown) return HeadVerdict::not_implemented;
    if (!(f.te_chunked_only && f.te_chunked_count == 1 && f.te_codings == 1))
      return HeadVerdict::malformed;
    out.chunked = true;
  }
  out.has_content_length = f.content_length_count == 1;
  out.content_length = f.content_length;
  return HeadVerdict::ok;
}

HeadScan fail(HeadVerdict v) noexcept {
  HeadScan s;
  s.verdict = v;
  return s;
}

/// Common prologue: find the end of the head within the limits.
bool locate_head(std::string_view buf, const HeadLimits& limits, HeadScan& out,
                 std::size_t& head_end) noexcept {
  bool bare_lf = false;
  head_end = find_head_end(buf, bare_lf);
  if (bare_lf) {
    out = fail(HeadVerdict::malformed);
    return false;
  }
  const std::size_t line_end = buf.find("\r\n");
  if ((line_end == std::string_view::npos && buf.size() > limits.max_line) ||
      (line_end != std::string_view::npos && line_end > limits.max_line)) {
    out = fail(HeadVerdict::uri_too_long);
    return false;
  }
  if (head_end == 0) {
    out = fail(buf.size() > limits.max_line + limits.max_bytes ? HeadVerdict::too_large
                                                               : HeadVerdict::incomplete);
    return false;
  }
  if (head_end - (line_end + 2) > limits.max_bytes) {
    out = fail(HeadVerdict::too_large);
    return false;
  }
  return true;
}

int parse_version(std::string_view v) noexcept {
  if (v == "HTTP/1.1") return 1;
  if (v == "HTTP/1.0") return 0;
  return -1;
}

}  // namespace

HeadScan scan_request_head(std::string_view buf, const HeadLimits& limits,
                           std::vector<FieldSpan>* fields) noexcept {
  HeadScan out;
  std::size_t head_end = 0;
  if (!locate_head(buf, limits, out, head_end)) return out;
  std::string_view head = buf.substr(0, head_end);
  const std::size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  // request-line = method SP request-target SP HTTP-version, single spaces (RFC 9112 §3).
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return fail(HeadVerdict::malformed);
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return fail(HeadVerdict::malformed);
  // Methods are upper-case letters, '-' and '_' (nginx's rule; llhttp is stricter still). Any
  // token would be legal, but a lower-case "method" is what an unframed body glued to the next
  // request looks like ("helloGET /x"), and strict peers would read those bytes differently.
  for (unsigned char c : line.substr(0, sp1))
    if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_')) return fail(HeadVerdict::malformed);
  // A fragment is never part of a request target (RFC 9112 §3.2): a '#' would split what is
  // routed from what is forwarded.
  for (unsigned char c : line.substr(sp1 + 1, sp2 - sp1 - 1))
    if (c <= 0x20 || c == 0x7F || c == '#') return fail(HeadVerdict::malformed);
  const int minor = parse_version(line.substr(sp2 + 1));
  if (minor < 0) return fail(HeadVerdict::malformed);
  FieldFacts facts;
  const HeadVerdict fv = scan_fields(head, line_end + 2, limits, facts, fields);
  if (fv != HeadVerdict::ok) return fail(fv);
  if (facts.host_count > 1 || (minor == 1 && facts.host_count == 0) || facts.host_bad)
    return fail(HeadVerdict::malformed);
  const HeadVerdict framing = check_framing(facts, minor, out);
  if (framing != HeadVerdict::ok) return fail(framing);
  out.verdict = HeadVerdict::ok;
  out.head_bytes = head_end;
  out.version_minor = minor;
  out.method_len = static_cast<std::uint32_t>(sp1);
  out.target_off = static_cast<std::uint32_t>(sp1 + 1);
  out.target_len = static_cast<std::uint32_t>(sp2 - sp1 - 1);
  return out;
}

HeadScan scan_response_head(std::string_view buf, const HeadLimits& limits,
                            std::vector<FieldSpan>* fields) noexcept {
  HeadScan out;
  std::size_t head_end = 0;
  if (!locate_head(buf, limits, out, head_end)) return out;
  std::string_view head = buf.substr(0, head_end);
  const std::size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  // status-line = HTTP-version SP 3DIGIT SP [reason-phrase]; the second SP is required (Beast
  // rejects "HTTP/1.1 200" without it, so an ok here must not).
  if (line.size() < 13 || line[8] != ' ' || line[12] != ' ') return fail(HeadVerdict::malformed);
  const int minor = parse_version(line.substr(0, 8));
  if (minor < 0) return fail(HeadVerdict::malformed);
  for (std::size_t i = 9; i < 12; ++i)
    if (line[i] < '0' || line[i] > '9') return fail(HeadVerdict::malformed);
  for (unsigned char c : line.substr(12))
    if ((c < 0x20 && c != '\t') || c == 0x7F) return fail(HeadVerdict::malformed);
  // Only 100-599 are status codes (RFC 9110 §15); "000" or "999" is not a response.
  const int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (status < 100 || status > 599) return fail(HeadVerdict::malformed);
  FieldFacts facts;
  const HeadVerdict fv = scan_fields(head, line_end + 2, limits, facts, fields);
  if (fv != HeadVerdict::ok) return fail(fv);
  const HeadVerdict framing = check_framing(facts, minor, out);
  if (framing != HeadVerdict::ok)
    return fail(framing == HeadVerdict::not_implemented ? HeadVerdict::malformed : framing);
  out.verdict = HeadVerdict::ok;
  out.head_bytes = head_end;
  out.version_minor = minor;
  out.status = status;
  out.reason_off = 13;
  out.reason_len = static_cast<std::uint32_t>(line.size() - 13);
  return out;
}

}  // namespace problemgate::http1
