#pragma once
#include <string>
#include <string_view>

// Turning html/text bodies into a short, printable detail.
namespace problemgate::problem::internal {

inline constexpr std::size_t kMaxTextChars = 200;

/// Control characters become spaces, runs of whitespace collapse to one, and the result is cut to
/// `max_chars` UTF-8 characters (invalid bytes count as one; the writer replaces them).
std::string clean_text(std::string_view s, std::size_t max_chars);

/// Replaces each '<' that would open a tag, comment or processing instruction in an HTML parser
/// ('<' then an ASCII letter, '/', '!' or '?') by U+2039 '‹'. For text that came out of entity
/// decoding (html, xml): see the definition for why.
void neutralize_tag_openers(std::string& text);

/// True when `text` says nothing beyond the status: a status line ("404 Not Found",
/// "HTTP Status 404 – Not Found"), the bare reason phrase (old names too), a generic word like
/// "Error", page boilerplate ("Type Status Report"), or a single word (server signatures such as
/// "nginx/1.25.3").
bool says_only_status(std::string_view text, int status);

}  // namespace problemgate::problem::internal
