#pragma once
#include <string>
#include <string_view>

namespace problemgate::core {

/// Appends `s` to `out` as the inside of a JSON string (no quotes): escapes `"`, `\`, control
/// characters, U+2028/U+2029, and replaces invalid UTF-8 with U+FFFD. At most `max_bytes`
/// input bytes are taken (cut on a character boundary); the result is always valid JSON text.
void append_json_escaped(std::string& out, std::string_view s,
                         std::size_t max_bytes = std::string_view::npos);

/// `"` + escaped + `"`.
inline void append_json_string(std::string& out, std::string_view s,
                               std::size_t max_bytes = std::string_view::npos) {
  out.push_back('"');
  append_json_escaped(out, s, max_bytes);
  out.push_back('"');
}

/// Length of the valid UTF-8 sequence starting at s[0], or 0 when it is invalid.
std::size_t utf8_sequence_length(std::string_view s) noexcept;

}  // namespace problemgate::core
