#include "problem/rules.hpp"

#include "problem/code_case.hpp"
#include "problemgate/problem/normalize.hpp"

namespace problemgate::problem::internal {

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

namespace {

bool matches(const Rule::When& w, const RuleSubject& s, int status) {
  if (w.status && *w.status != status) return false;
  if (w.status_class && *w.status_class != status / 100) return false;
  if (w.dialect && *w.dialect != Dialect::automatic && *w.dialect != s.dialect) return false;
  if (w.upstream_code) {
    if (s.upstream_code.empty()) return false;
    if (!glob_match(*w.upstream_code, s.upstream_code) &&
        !glob_match(*w.upstream_code, to_snake_case(s.upstream_code)))
      return false;
  }
  // The whole detail: RE2 is linear in it, and it is already bounded by problem.max_error_body.
  if (w.detail_matches && !w.detail_matches->search(s.detail)) return false;
  return true;
}

}  // namespace

const Rule* apply_rules(const std::vector<Rule>& rules, const RuleSubject& subject,
                        const Options& opts, bool keep_type, Problem& p) {
  for (const auto& rule : rules) {
    if (!matches(rule.when, subject, p.status)) continue;
    const auto& set = rule.set;
    if (set.code && *set.code != p.code) {
      p.code = *set.code;
      if (!keep_type) fill_type_and_title(p, opts);
    }
    if (set.subcode) p.subcode = *set.subcode;
    if (set.type) p.type = *set.type;
    if (set.title) p.title = *set.title;
    if (set.detail) p.detail = *set.detail;
    return &rule;
  }
  return nullptr;
}

}  // namespace problemgate::problem::internal
