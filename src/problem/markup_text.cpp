#include "problem/markup_text.hpp"

#include <array>
#include <string_view>

#include "problem/code_case.hpp"
#include "problemgate/problem/normalize.hpp"

namespace problemgate::problem::internal {

std::string clean_text(std::string_view s, std::size_t max_chars) {
  std::string out;
  out.reserve(s.size() < 256 ? s.size() : 256);
  std::size_t chars = 0;
  bool space = false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ') {
      space = !out.empty();
      continue;
    }
    const bool starts_char = (u & 0xC0) != 0x80;
    if (starts_char) {
      if (chars + (space ? 1 : 0) >= max_chars) break;
      if (space) {
        out.push_back(' ');
        ++chars;
        space = false;
      }
      ++chars;
    }
    out.push_back(c);
  }
  return out;
}

namespace {

bool opens_tag(char next) noexcept {
  return (next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || next == '/' ||
         next == '!' || next == '?';
}

// U+2039 SINGLE LEFT-POINTING ANGLE QUOTATION MARK.
constexpr std::string_view kTagOpenerStandIn = "\xE2\x80\xB9";

}  // namespace

// Why: an html or xml page escapes markup it means as text ("&lt;img src=x onerror=...&gt;"),
// and decoding that for display must not hand a client that renders `detail` as HTML a live tag
// (issue 24, finding 11). The '<' is replaced, not dropped with its tag, so the reader still sees
// what the upstream said ("Your input ‹img src=x> is invalid"), and not re-escaped as "&lt;",
// which every client rendering text would show verbatim. U+2039 rather than the fullwidth U+FF1C:
// NFKC folds U+FF1C back to '<', so a client that normalizes text would recreate the tag; U+2039
// has no compatibility decomposition. Only the tag-opening states of the HTML tokenizer matter: a
// '<' before a space or digit ("a < b", "<5 items") is text to every parser and is kept.
void neutralize_tag_openers(std::string& text) {
  std::string out;
  std::size_t copied = 0;  // text[0, copied) is in `out` already
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] != '<' || !opens_tag(text[i + 1])) continue;
    out.append(text, copied, i - copied);
    out.append(kTagOpenerStandIn);
    copied = i + 1;
  }
  if (copied == 0) return;  // no tag opener, the usual case: nothing allocated
  out.append(text, copied);
  text = std::move(out);
}

bool says_only_status(std::string_view text, int status) {
  if (trim(text).find(' ') == std::string_view::npos) return true;  // one word, "nginx/1.25.3"
  const std::string snake = to_snake_case(text);
  // Words of status lines and error-page boilerplate (Tomcat's "Type Status Report").
  static constexpr std::array<std::string_view, 10> kNoise{
      "http", "status", "error", "code", "the", "an", "type", "report", "message", "description"};
  const std::string status_digits = std::to_string(status);
  std::string rest;
  std::size_t start = 0;
  while (start <= snake.size()) {
    std::size_t end = snake.find('_', start);
    if (end == std::string::npos) end = snake.size();
    std::string_view word(snake.data() + start, end - start);
    bool noise = word == status_digits;
    for (auto n : kNoise) noise = noise || word == n;
    if (!noise && !word.empty()) {
      if (!rest.empty()) rest.push_back('_');
      rest.append(word);
    }
    start = end + 1;
  }
  return rest.empty() || repeats_reason_phrase(rest, status) || rest == "occurred" ||
         rest == "error_occurred";
}

}  // namespace problemgate::problem::internal
