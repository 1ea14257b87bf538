#pragma once
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "problemgate/problem/detail_pattern.hpp"

namespace problemgate::problem {

/// Upstream error dialects in detection order (spec §4). `automatic` = detect. `oversize` is
/// not detected: it marks a body over max_error_body, answered from the status alone (spec §1).
enum class Dialect {
  automatic,
  problem,
  nested,
  flat,
  detail,
  fieldmap,
  json,
  xml,
  html,
  text,
  empty,
  oversize
};

/// "problem", "nested", ... ("auto" for automatic).
std::string_view dialect_name(Dialect d) noexcept;
/// Parses a dialect name; nullopt when unknown.
std::optional<Dialect> parse_dialect(std::string_view name) noexcept;

/// A status catalog row (spec §3.1).
struct CatalogEntry {
  std::string code;
  std::string title;
};

/// A legacy-table row: an upstream code (as the upstream wrote it) mapped to a new subcode and,
/// optionally, a new parent code (empty = keep the status-derived parent).
struct LegacyCode {
  std::string code;
  std::string subcode;
};

/// One mapping rule (spec §7). Empty/unset `when` members match anything.
struct Rule {
  struct When {
    std::optional<int> status;        ///< exact status
    std::optional<int> status_class;  ///< 4 for "4xx", 5 for "5xx"
    std::optional<Dialect> dialect;
    std::optional<std::string> upstream_code;     ///< exact or glob (* and ?), matched against
                                                  ///< the upstream's raw and normalized code
    std::optional<DetailPattern> detail_matches;  ///< searched in the whole detail
  } when;
  struct Set {
    std::optional<std::string> code, subcode, title, detail, type;
  } set;
};

/// Gateway-wide normalizer options (config `problem:`). Immutable once built.
struct Options {
  std::optional<std::string> type_base;  ///< nullopt: about:blank
  bool expose_5xx_detail = false;
  std::size_t max_error_body = 64 * 1024;
  std::map<int, CatalogEntry> catalog;  ///< overrides of the spec §3.1 table
  /// Merged over the default table (seed 004's appendix). Keys are upstream codes as written.
  std::unordered_map<std::string, LegacyCode> legacy_codes;
};

/// Per-route normalizer settings.
struct RouteOptions {
  bool normalize = true;
  Dialect dialect = Dialect::automatic;
  std::vector<Rule> rules;
};

}  // namespace problemgate::problem
