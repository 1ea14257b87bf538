#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "problem/json_util.hpp"
#include "problemgate/problem/problem.hpp"

// Spec §3.3: every form of field-level error becomes {path, code, message}, in upstream order.
// `default_code` is the body's own code (normalized) or "invalid".
namespace problemgate::problem::internal {

/// The code of field errors that carry none of their own: the body code's normalized form, or
/// "invalid". Computed on first use: most error bodies name no field.
class DefaultFieldCode {
public:
  explicit DefaultFieldCode(std::string_view body_code) noexcept : body_code_(body_code) {}
  std::string_view get();

private:
  std::string_view body_code_;
  std::optional<std::string> code_;
};

/// Field maps nest at most this deep; deeper members are ignored (bounded recursion).
inline constexpr int kMaxFieldDepth = 16;

/// DRF's default validation body: every value is a list of strings, or nested maps / lists of maps
/// of them. Empty objects are not field maps.
bool is_field_map(JsonObject o, int depth = 0) noexcept;

/// Flattens a field map: nested keys joined by '.', list indices as segments,
/// `non_field_errors` / `__all__` on their parent's path ("" at the top).
void flatten_field_map(JsonObject o, const std::string& prefix, DefaultFieldCode& default_code,
                       std::vector<FieldError>& out, int depth = 0);

/// Entries of an `errors[]`-like array that name a field (problem+json, JSON:API source.pointer
/// or parameter, GraphQL path, FastAPI loc, GitHub/Spring field, Kubernetes causes). Entries that
/// name no field are skipped.
void errors_from_array(JsonArray a, DefaultFieldCode& default_code, std::vector<FieldError>& out);

/// Google `BadRequest.fieldViolations` found in an `error.details[]` array.
void errors_from_google_details(JsonArray details, DefaultFieldCode& default_code,
                                std::vector<FieldError>& out);

/// The common containers on one object: `fields` (map), `errors` (map or array).
void collect_field_errors(JsonObject o, DefaultFieldCode& default_code, std::vector<FieldError>& out);

/// The code an error entry carries (`code`, `extensions.code`, `type`, `reason`), raw.
std::optional<std::string_view> entry_code(JsonObject e) noexcept;


}  // namespace problemgate::problem::internal
