// Dialect 2, `nested`: `error` is an object (npayload, Google APIs, Stripe, Elasticsearch).
#include "problem/code_case.hpp"
#include "problem/extract.hpp"
#include "problem/field_errors.hpp"
#include "problem/json_util.hpp"

namespace problemgate::problem::internal {

namespace {

/// Google's `ErrorInfo.reason` from `error.details[]`.
std::optional<std::string_view> google_reason(JsonObject error) noexcept {
  auto details = array_member(error, "details");
  if (!details) return std::nullopt;
  for (JsonElement item : *details) {
    auto d = as_object(item);
    if (!d) continue;
    auto type = string_member(*d, "@type");
    if (type && type->ends_with("google.rpc.ErrorInfo")) {
      if (auto r = code_member(*d, "reason")) return r;
    }
  }
  return std::nullopt;
}

}  // namespace

bool read_nested(JsonObject root, const DialectInput& in, Extract& out) {
  auto error = object_member(root, "error");
  if (!error) return false;

  Extract ex;
  ex.errors = FieldErrors(in.field_error_budget);
  auto code = code_member(*error, "code");
  if (!code) code = google_reason(*error);
  if (!code) code = code_member(*error, "status");  // Google's canonical status name
  if (!code) code = code_member(*error, "type");    // Elasticsearch
  if (code) ex.upstream_code = std::string(*code);

  auto detail = first_text(*error, "message", "reason", "description", "detail");
  if (!detail) detail = first_text(root, "message", "detail");
  if (detail) ex.detail = std::string(*detail);

  DefaultFieldCode field_code{ex.upstream_code};
  if (auto param = text_member(*error, "param")) {  // Stripe: one entry for the offending param
    const std::string c = code ? subcode_for(*code) : std::string();
    ex.errors.add(*param, c.empty() ? field_code.get() : std::string_view(c), detail);
  }
  if (auto details = member(*error, "details")) {
    if (auto list = as_array(*details)) {
      errors_from_google_details(*list, field_code, ex.errors);
    } else if (auto map = as_object(*details); map && is_field_map(*map)) {
      flatten_field_map(*map, field_code, ex.errors);
    }
  }
  collect_field_errors(*error, field_code, ex.errors);
  out = std::move(ex);
  return true;
}

}  // namespace problemgate::problem::internal
