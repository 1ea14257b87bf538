#pragma once
#include <string_view>

#include "problemgate/problem/options.hpp"
#include "problemgate/problem/problem.hpp"

// Spec §7 mapping rules, and the glob matcher they share with the legacy table.
namespace problemgate::problem::internal {

/// Glob match with `*` (any run) and `?` (one byte); case-sensitive. Iterative, no backtracking
/// blow-up.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

/// What a rule may look at besides the problem being built.
struct RuleSubject {
  Dialect dialect;
  std::string_view upstream_code;  ///< raw, as the upstream wrote it ("" when none)
  std::string_view detail;         ///< the upstream's detail before §3.4 hid it ("" when none)
};

/// Applies the first matching rule's `set` to `p`. Returns that rule, or nullptr when none matched.
/// A new code without a new type/title re-derives them unless `keep_type` (an upstream problem's own).
const Rule* apply_rules(const std::vector<Rule>& rules, const RuleSubject& subject,
                        const Options& opts, bool keep_type, Problem& p);

}  // namespace problemgate::problem::internal
