#include "problem/markup_text.hpp"

#include <array>

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

bool says_only_status(std::string_view text, int status) {
  if (trim(text).find(' ') == std::string_view::npos) return true;  // one word, "nginx/1.25.3"
  const std::string snake = to_snake_case(text);
  // Words of status lines and error-page boilerplate (Tomcat's "Type Status Report").
  static constexpr std::array<std::string_view, 10> kNoise{"http", "status", "error", "code", "the",
                                                           "an", "type", "report", "message", "description"};
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
