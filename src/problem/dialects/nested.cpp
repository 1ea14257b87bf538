// Dialect 2, `nested`: `error` is an object (npayload, Google APIs, Stripe, Elasticsearch).
#include "problem/code_case.hpp"
#include "problem/extract.hpp"
#include "problem/field_errors.hpp"
#include "problem/json_util.hpp"

namespace problemgate::problem::internal {

namespace {

/// The first entry of Google's `error.details[]` whose `@type` ends with `type`
/// (e.g. "google.rpc.ErrorInfo": the prefix is a type URL host that varies).
std::optional<JsonObject> google_detail(JsonObject error, std::string_view type) noexcept {
  auto details = array_member(error, "details");
  if (!details) return std::nullopt;
  for (JsonElement item : *details) {
    auto d = as_object(item);
    if (!d) continue;
    auto t = string_member(*d, "@type");
    if (t && t->ends_with(type)) return d;
  }
  return std::nullopt;
}

/// Google's `ErrorInfo.reason`.
std::optional<std::string_view> google_reason(JsonObject error) noexcept {
  auto info = google_detail(error, "google.rpc.ErrorInfo");
  return info ? code_member(*info, "reason") : std::nullopt;
}

/// A protobuf Duration in its JSON form ("30s", "1.500s"), in whole seconds rounded up.
std::optional<std::int64_t> duration_seconds(std::string_view d) noexcept {
  if (d.size() < 2 || d.back() != 's') return std::nullopt;
  d.remove_suffix(1);
  std::int64_t whole = 0;
  bool fraction = false;
  std::size_t i = 0;
  for (; i < d.size() && d[i] >= '0' && d[i] <= '9'; ++i) {
    if (whole > 315'576'000'000) return std::nullopt;  // the Duration type's own bound
    whole = whole * 10 + (d[i] - '0');
  }
  if (i == 0) return std::nullopt;
  if (i < d.size()) {
    if (d[i] != '.' || i + 1 == d.size()) return std::nullopt;
    for (++i; i < d.size(); ++i) {
      if (d[i] < '0' || d[i] > '9') return std::nullopt;
      fraction = fraction || d[i] != '0';
    }
  }
  return whole + (fraction ? 1 : 0);
}

/// Google's `RetryInfo.retryDelay`, in whole seconds.
std::optional<std::int64_t> google_retry_delay(JsonObject error) noexcept {
  auto info = google_detail(error, "google.rpc.RetryInfo");
  if (!info) return std::nullopt;
  auto delay = string_member(*info, "retryDelay");
  return delay ? duration_seconds(*delay) : std::nullopt;
}

/// OData v2/v3 (SAP Gateway, SharePoint) write `message` as {"lang": ..., "value": ...}.
std::optional<std::string_view> odata_message(JsonObject error) noexcept {
  auto m = object_member(error, "message");
  return m ? text_member(*m, "value") : std::nullopt;
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
  if (!detail) detail = odata_message(*error);
  if (!detail) detail = first_text(root, "message", "detail");
  if (detail) ex.detail = std::string(*detail);

  ex.retry_after = google_retry_delay(*error);

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
