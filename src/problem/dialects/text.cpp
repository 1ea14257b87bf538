// Dialect 9, `text`: the first non-empty line, at most kMaxTextChars characters.
#include "problem/code_case.hpp"
#include "problem/extract.hpp"
#include "problem/markup_text.hpp"

namespace problemgate::problem::internal {

bool read_text(std::string_view body, const DialectInput& in, Extract& out) {
  std::string_view rest = trim(body);
  if (rest.empty()) return false;
  Extract ex;
  ex.detail_is_markup = true;
  std::string_view line = trim(rest.substr(0, rest.find('\n')));
  // A broken JSON or markup document makes a useless sentence: leave detail out. A '[' only
  // counts as JSON when the media type says so ("[WARN] ..." is a fine plain-text line).
  const bool json_like =
      !line.empty() && (line.front() == '{' || line.front() == '<' ||
                        (line.front() == '[' && icontains(in.content_type, "json")));
  if (!line.empty() && !json_like) ex.detail = clean_text(line, kMaxTextChars);
  out = std::move(ex);
  return true;
}

}  // namespace problemgate::problem::internal
