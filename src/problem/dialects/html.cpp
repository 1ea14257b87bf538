// Dialect 8, `html`: for 4xx, the first visible text that says more than the status (nginx,
// Apache, framework error pages). Never read for 5xx: the page may hold a stack trace.
#include <array>
#include <cctype>

#include "problem/code_case.hpp"
#include "problem/extract.hpp"
#include "problem/markup_text.hpp"

namespace problemgate::problem::internal {

namespace {

bool looks_like_html(std::string_view body, std::string_view content_type) noexcept {
  if (icontains(content_type, "html")) return true;
  std::string_view t = trim(body);
  if (t.starts_with("\xEF\xBB\xBF")) t.remove_prefix(3);
  if (istarts_with(t, "<!doctype html") || istarts_with(t, "<html")) return true;
  return !t.empty() && t.front() == '<' && (icontains(t, "<body") || icontains(t, "<title"));
}

/// Elements whose content is never visible text. `address` holds Apache's server signature.
bool skips_content(std::string_view tag) noexcept {
  for (std::string_view s : {"script", "style", "noscript", "template", "address", "svg"})
    if (iequals(tag, s)) return true;
  return false;
}

/// Inline elements do not end a run of text: "<b>Message</b> Invalid character" is one sentence.
bool is_inline(std::string_view tag) noexcept {
  for (std::string_view s : {"a", "abbr", "b", "code", "em", "font", "i", "kbd", "small", "span",
                             "strong", "sub", "sup", "tt", "u", "var", "samp", "q", "cite"})
    if (iequals(tag, s)) return true;
  return false;
}

void append_entity(std::string_view& rest, std::string& text) {
  struct Entity {
    std::string_view name, value;
  };
  static constexpr std::array kEntities{
      Entity{"&amp;", "&"},   Entity{"&lt;", "<"},    Entity{"&gt;", ">"},
      Entity{"&quot;", "\""}, Entity{"&#39;", "'"},   Entity{"&apos;", "'"},
      Entity{"&nbsp;", " "},  Entity{"&ndash;", "-"}, Entity{"&mdash;", "-"}};
  for (const auto& e : kEntities) {
    if (istarts_with(rest, e.name)) {
      text.append(e.value);
      rest.remove_prefix(e.name.size());
      return;
    }
  }
  text.push_back('&');
  rest.remove_prefix(1);
}

}  // namespace

bool read_html(std::string_view body, const DialectInput& in, Extract& out) {
  if (!looks_like_html(body, in.content_type)) return false;
  Extract ex;
  ex.detail_is_markup = true;
  if (in.status >= 500) {
    out = std::move(ex);
    return true;
  }

  std::string text;
  auto flush = [&]() -> bool {
    std::string candidate = clean_text(text, kMaxTextChars);
    text.clear();
    neutralize_tag_openers(candidate);  // "&lt;img ...&gt;" was text on the page; keep it text
    if (candidate.empty() || says_only_status(candidate, in.status)) return false;
    ex.detail = std::move(candidate);
    return true;
  };

  std::string_view rest = body;
  while (!rest.empty()) {
    const char c = rest.front();
    if (c == '&') {
      append_entity(rest, text);
      continue;
    }
    if (c != '<') {
      text.push_back(c);
      rest.remove_prefix(1);
      continue;
    }
    if (rest.starts_with("<!--")) {
      auto end = rest.find("-->", 4);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 3);
      continue;
    }
    std::size_t i = 1;
    if (i < rest.size() && rest[i] == '/') ++i;
    std::size_t name_start = i;
    while (i < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[i])) != 0)) ++i;
    std::string_view tag = rest.substr(name_start, i - name_start);
    const bool closing = name_start == 2;
    if (!is_inline(tag) && flush()) break;  // a block tag ends the current run of text
    auto gt = rest.find('>', i);
    rest = gt == std::string_view::npos ? std::string_view() : rest.substr(gt + 1);
    if (!closing && !tag.empty() && skips_content(tag)) {
      // Skip to the matching close tag (case-insensitive search).
      std::size_t k = 0;
      bool found = false;
      for (; k + 2 + tag.size() <= rest.size(); ++k) {
        if (rest[k] == '<' && rest[k + 1] == '/' && iequals(rest.substr(k + 2, tag.size()), tag)) {
          found = true;
          break;
        }
      }
      rest = found ? rest.substr(k) : std::string_view();
    }
  }
  if (!ex.detail) flush();
  out = std::move(ex);
  return true;
}

}  // namespace problemgate::problem::internal
