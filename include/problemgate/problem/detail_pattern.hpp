#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>

// RE2 stays an implementation detail of problem/detail_pattern.cpp: everything that includes the
// config sees this declaration only.
namespace re2 {
class RE2;
}  // namespace re2

namespace problemgate::problem {

/// A compiled `detail_matches` regex (spec §7). RE2 syntax, UTF-8, case-sensitive unless the
/// pattern says otherwise with an inline flag such as `(?i)`. RE2 runs in time linear in the
/// text, so a rule is safe on upstream-controlled details; the price is no backreferences and no
/// lookaround, which compile() rejects.
///
/// A cheap-to-copy value: copies share one immutable compiled regex, which RE2 allows several
/// threads to search at once.
class DetailPattern {
 public:
  /// Compiles `pattern`. On failure returns nullopt and sets `error` to why, in RE2's words plus a
  /// hint for the Perl features RE2 lacks.
  static std::optional<DetailPattern> compile(std::string_view pattern, std::string& error);

  /// True when the pattern matches somewhere in `text` (a search, not a full match). Not
  /// noexcept: RE2 allocates its DFA lazily, and std::bad_alloc belongs to the normalizer's
  /// last-resort handler.
  bool search(std::string_view text) const;

  /// The pattern as configured, for messages.
  const std::string& pattern() const noexcept;

 private:
  explicit DetailPattern(std::shared_ptr<const re2::RE2> re) : re_(std::move(re)) {}

  std::shared_ptr<const re2::RE2> re_;  // never null
};

}  // namespace problemgate::problem
