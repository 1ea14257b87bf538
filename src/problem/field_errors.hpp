#pragma once
#include <cstddef>
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

/// How many bytes the serialized entries of the `errors` array may take for a body of
/// `body_size` bytes: kFieldErrorBytesPerBodyByte per body byte plus kFieldErrorBudgetFloor.
/// Paths repeat their parent's prefix for every child, so without a bound a 60 KB field map
/// (one 30 KB key, 10,000 empty messages) writes 300 MB: output growing with the square of the
/// input. Real bodies write about 1-3 bytes of entries per body byte; the floor keeps small
/// bodies of many one-letter messages whole.
inline constexpr std::size_t kFieldErrorBytesPerBodyByte = 8;
inline constexpr std::size_t kFieldErrorBudgetFloor = 4096;
std::size_t field_error_budget(std::size_t body_size) noexcept;

/// The field errors of one body, kept under a byte budget: an entry is added only while its
/// serialized form (as write_problem writes it, separating comma included) fits what is left.
/// The first entry that does not fit closes the list, so the kept entries are always the first
/// ones in upstream order, and a closed list costs nothing more to feed.
class FieldErrors {
 public:
  /// A zero budget: keeps nothing, so a reader that forgets to give one loses entries, not the
  /// bound.
  FieldErrors() = default;
  explicit FieldErrors(std::size_t budget_bytes) noexcept : remaining_(budget_bytes) {}

  void add(std::string_view path, std::string_view code, std::optional<std::string_view> message);
  /// True once an entry was dropped: nothing more is kept.
  bool closed() const noexcept { return closed_; }
  std::vector<FieldError> take() && noexcept { return std::move(entries_); }

 private:
  /// Bytes `{"path":..,"code":..[,"message":..]}` takes once escaped.
  std::size_t serialized_size(std::string_view path, std::string_view code,
                              std::optional<std::string_view> message);

  std::vector<FieldError> entries_;
  std::size_t remaining_ = 0;
  bool closed_ = false;
  std::string scratch_;  // escaping buffer for serialized_size, reused
};

/// Field maps nest at most this deep; deeper members are ignored (bounded recursion).
inline constexpr int kMaxFieldDepth = 16;

/// DRF's default validation body: every value is a list of strings, or nested maps / lists of maps
/// of them. Empty objects are not field maps.
bool is_field_map(JsonObject o, int depth = 0) noexcept;

/// Flattens a field map: nested keys joined by '.', list indices as segments,
/// `non_field_errors` / `__all__` on their parent's path ("" at the top).
void flatten_field_map(JsonObject o, DefaultFieldCode& default_code, FieldErrors& out);

/// Entries of an `errors[]`-like array that name a field (problem+json, JSON:API source.pointer
/// or parameter, GraphQL path, FastAPI loc, GitHub/Spring field, Kubernetes causes). Entries that
/// name no field are skipped.
void errors_from_array(JsonArray a, DefaultFieldCode& default_code, FieldErrors& out);

/// Google `BadRequest.fieldViolations` found in an `error.details[]` array.
void errors_from_google_details(JsonArray details, DefaultFieldCode& default_code,
                                FieldErrors& out);

/// The common containers on one object: `fields` (map), `errors` (map or array).
void collect_field_errors(JsonObject o, DefaultFieldCode& default_code, FieldErrors& out);

/// The code an error entry carries (`code`, `extensions.code`, `type`, `reason`), raw.
std::optional<std::string_view> entry_code(JsonObject e) noexcept;
/// entry_code() without `reason`, for entries whose reason is their text (RFC 7807).
std::optional<std::string_view> entry_code_besides_reason(JsonObject e) noexcept;

}  // namespace problemgate::problem::internal
