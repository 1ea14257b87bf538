#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "problemgate/problem/options.hpp"

// The legacy code table (spec §3.2): seed 004's appendix by default, merged with
// `Options::legacy_codes` from config.
namespace problemgate::problem::internal {

struct LegacyHit {
  std::string subcode;  ///< the new subcode
  std::string code;     ///< a new parent code, "" to keep the status-derived one
};

/// Looks `raw` (the upstream code as written, case-sensitive) up: exact config entries, exact
/// default entries, then globs (config first; the longest matching pattern wins). Default entries
/// never move the parent code: the status decides it (corpus case nested-quota).
std::optional<LegacyHit> find_legacy_code(std::string_view raw, const Options& opts);

}  // namespace problemgate::problem::internal
