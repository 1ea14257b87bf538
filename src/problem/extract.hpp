#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "problem/field_errors.hpp"
#include "problemgate/problem/normalize.hpp"

// What a dialect reads out of a body, before spec §3 turns it into the canonical problem.
// Each dialect lives in src/problem/dialects/<name>.cpp and has one entry point here: it returns
// false, leaving `Extract` untouched, when the body is not of its shape.
namespace problemgate::problem::internal {

struct Extract {
  std::string upstream_code;  ///< the upstream's own code as written ("" when none)
  std::optional<std::string> detail;
  bool detail_is_markup = false;           ///< html/text: never shown on 5xx, even when exposed
  FieldErrors errors;                      ///< under DialectInput::field_error_budget
  std::optional<std::string> type, title;  ///< an upstream problem's own members
  std::string extensions;                  ///< an upstream problem's extension members
  UpstreamRateLimit rate_limit;
  std::optional<std::int64_t>
      retry_after;  ///< from the body (flat retry_after, problem retryAfter)
};

struct DialectInput {
  int status;
  std::string_view content_type;
  std::size_t field_error_budget;  ///< field_error_budget() of the body's size
  bool own_trace_id = false;       ///< the gateway writes its own traceId: drop the upstream's
};

bool read_problem(simdjson::dom::object root, const DialectInput& in, Extract& out);
/// The problem dialect's extension members (all but the canonical ones), re-serialized from the
/// parsed tree (so always valid JSON) as `"name":value,...` and appended to `out`; the first
/// member of each name only.
/// `name_comparisons` as in first_of_each_name (the work-bound guard test's measure).
/// `own_trace_id`: the gateway writes `traceId` itself, so an upstream `traceId` (ASP.NET's, for
/// one) is not kept; without one of ours (the normalize command) it is kept as an extension.
void append_extension_members(simdjson::dom::object root, std::string& out,
                              std::size_t* name_comparisons = nullptr, bool own_trace_id = false);
bool read_nested(simdjson::dom::object root, const DialectInput& in, Extract& out);
bool read_flat(simdjson::dom::object root, const DialectInput& in, Extract& out);
bool read_detail(simdjson::dom::object root, const DialectInput& in, Extract& out);
bool read_fieldmap(simdjson::dom::object root, const DialectInput& in, Extract& out);
bool read_json(simdjson::dom::object root, const DialectInput& in, Extract& out);
bool read_xml(std::string_view body, const DialectInput& in, Extract& out);
bool read_html(std::string_view body, const DialectInput& in, Extract& out);
bool read_text(std::string_view body, const DialectInput& in, Extract& out);

}  // namespace problemgate::problem::internal
