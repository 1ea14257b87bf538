#include "problem/code_case.hpp"

#include <array>

#include "problemgate/problem/normalize.hpp"
#include "problemgate/problem/problem.hpp"

namespace problemgate::problem {

namespace {
bool is_upper(char c) noexcept { return c >= 'A' && c <= 'Z'; }
bool is_lower(char c) noexcept { return c >= 'a' && c <= 'z'; }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_alnum(char c) noexcept { return is_upper(c) || is_lower(c) || is_digit(c); }
char to_lower(char c) noexcept { return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c; }
}  // namespace

namespace {

/// Calls `emit(c)` for each character of `code` in lowercase_snake_case (spec §3.2), so that
/// a conversion can be compared without building it.
template <class Emit>
void walk_snake_case(std::string_view code, Emit&& emit) {
  bool pending_sep = false;
  bool any = false;
  for (std::size_t i = 0; i < code.size(); ++i) {
    const char c = code[i];
    if (!is_alnum(c)) {
      pending_sep = true;
      continue;
    }
    if (is_upper(c) && i > 0) {
      const char prev = code[i - 1];
      const bool next_lower = i + 1 < code.size() && is_lower(code[i + 1]);
      // camelCase / PascalCase word starts; "HTTPServer" splits before the last capital.
      if (is_lower(prev) || is_digit(prev) || (is_upper(prev) && next_lower)) pending_sep = true;
    }
    if (pending_sep && any) {
      if (!emit('_')) return;
    }
    pending_sep = false;
    any = true;
    if (!emit(to_lower(c))) return;
  }
}

/// True when to_snake_case(text) == snake, without allocating.
bool snake_case_equals(std::string_view snake, std::string_view text) {
  std::size_t i = 0;
  bool same = true;
  walk_snake_case(text, [&](char c) {
    same = i < snake.size() && snake[i] == c;
    ++i;
    return same;
  });
  return same && i == snake.size();
}

}  // namespace

std::string to_snake_case(std::string_view code) {
  // At most one separator before each character, so 2n bytes always suffice: codes are built
  // on the stack and copied once (one allocation at most), longer text in the string itself.
  char stack[128];
  std::string big;
  char* buf = stack;
  if (2 * code.size() > sizeof stack) {
    big.resize(2 * code.size());
    buf = big.data();
  }
  std::size_t n = 0;
  walk_snake_case(code, [&](char c) {
    buf[n++] = c;
    return true;
  });
  if (buf != stack) {
    big.resize(n);
    return big;
  }
  return std::string(stack, n);
}

namespace internal {

std::string_view trim(std::string_view s) noexcept {
  auto ws = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
  };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool icontains(std::string_view s, std::string_view needle) noexcept {
  if (needle.size() > s.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= s.size(); ++i)
    if (iequals(s.substr(i, needle.size()), needle)) return true;
  return false;
}

bool is_numeric_code(std::string_view raw) noexcept {
  raw = trim(raw);
  if (!raw.empty() && (raw.front() == '-' || raw.front() == '+')) raw.remove_prefix(1);
  if (raw.empty()) return false;
  for (char c : raw)
    if (!is_digit(c)) return false;
  return true;
}

std::string_view without_number_prefix(std::string_view raw) noexcept {
  std::size_t i = 0;
  if (i < raw.size() && (raw[i] == '-' || raw[i] == '+')) ++i;
  const std::size_t digits = i;
  while (i < raw.size() && is_digit(raw[i])) ++i;
  if (i == digits || i >= raw.size() || raw[i] != ',') return raw;
  return trim(raw.substr(i + 1));
}

std::string subcode_for(std::string_view raw) {
  raw = without_number_prefix(trim(raw));
  if (raw.empty() || is_numeric_code(raw)) return {};
  if (raw.find(' ') != std::string_view::npos) {
    // A title such as "Agent not found": letters and single words only, or it is a sentence.
    std::size_t words = 0;
    bool in_word = false;
    for (char c : raw) {
      if (c == ' ') {
        in_word = false;
      } else if (is_upper(c) || is_lower(c)) {
        if (!in_word) ++words;
        in_word = true;
      } else {
        return {};
      }
    }
    if (words > kMaxTitleWords) return {};
  }
  std::string s = to_snake_case(raw);
  if (s.size() > kMaxCodeLength) return {};
  return s;
}

bool repeats_reason_phrase(std::string_view snake, int status) {
  if (snake.empty()) return false;
  if (snake_case_equals(snake, reason_phrase(status))) return true;
  struct Alias {
    int status;
    std::string_view snake;
  };
  // Older RFC 2616/7231 names and common spellings of the same statuses.
  static constexpr std::array kAliases{
      Alias{401, "unauthorised"},
      Alias{404, "notfound"},
      Alias{408, "request_time_out"},
      Alias{413, "request_entity_too_large"},
      Alias{413, "payload_too_large"},
      Alias{414, "request_uri_too_long"},
      Alias{414, "request_uri_too_large"},
      Alias{416, "requested_range_not_satisfiable"},
      Alias{422, "unprocessable_entity"},
      Alias{429, "too_many_request"},
      Alias{500, "server_error"},
      Alias{500, "internal_error"},
      Alias{503, "service_temporarily_unavailable"},
      Alias{504, "gateway_time_out"},
      Alias{431, "request_header_too_large"},
  };
  for (const auto& a : kAliases)
    if (a.status == status && a.snake == snake) return true;
  return false;
}

std::string_view aws_error_name(std::string_view raw) noexcept {
  raw = trim(raw);
  if (auto hash = raw.rfind('#'); hash != std::string_view::npos) raw.remove_prefix(hash + 1);
  if (auto colon = raw.find(':'); colon != std::string_view::npos) raw = raw.substr(0, colon);
  return raw;
}

/// The application-specific last segment of a problem `type` URI, or "" for about:blank and links
/// to the HTTP specifications and registries (ASP.NET and Spring point at RFC sections).
std::string_view type_uri_code(std::string_view type) noexcept {
  type = trim(type);
  if (type.empty() || iequals(type, "about:blank")) return {};
  for (std::string_view host : {"ietf.org", "rfc-editor.org", "iana.org", "developer.mozilla.org",
                                "httpstatuses.", "httpstatus.", "w3.org"})
    if (icontains(type, host)) return {};
  std::string_view seg;
  if (auto hash = type.find('#'); hash != std::string_view::npos) {
    seg = type.substr(hash + 1);
    type = type.substr(0, hash);
  }
  if (seg.empty()) {
    if (auto q = type.find('?'); q != std::string_view::npos) type = type.substr(0, q);
    while (!type.empty() && type.back() == '/') type.remove_suffix(1);
    auto slash = type.rfind('/');
    if (slash == std::string_view::npos) return {};  // a bare word or URN: not a path segment
    seg = type.substr(slash + 1);
    for (std::string_view ext : {".html", ".htm", ".md", ".json"})
      if (seg.size() > ext.size() && iequals(seg.substr(seg.size() - ext.size()), ext))
        seg.remove_suffix(ext.size());
  }
  return seg;
}

}  // namespace internal
}  // namespace problemgate::problem
