// Dialect 1, `problem`: an RFC 9457 body already. Kept as it is; codes and errors normalized.
#include <array>
#include <string>
#include <vector>

#include "problem/code_case.hpp"
#include "problem/extract.hpp"
#include "problem/field_errors.hpp"
#include "problem/json_util.hpp"
#include "problem/member_names.hpp"
#include "problemgate/core/json_escape.hpp"

namespace problemgate::problem::internal {

namespace {

// Members the canonical body writes itself; never copied as extensions.
constexpr std::array<std::string_view, 10> kKnownMembers{
    "type", "title",   "status",    "detail", "instance",
    "code", "subcode", "requestId", "errors", "retryAfter"};

bool is_known(std::string_view key) noexcept {
  for (auto k : kKnownMembers)
    if (k == key) return true;
  return false;
}

bool is_number(JsonElement e) noexcept {
  auto t = e.type();
  return t == simdjson::dom::element_type::INT64 || t == simdjson::dom::element_type::UINT64 ||
         t == simdjson::dom::element_type::DOUBLE;
}

bool is_problem_media_type(std::string_view ct) noexcept {
  ct = trim(ct);
  return istarts_with(ct, "application/problem+json");
}

}  // namespace

void append_extension_members(JsonObject root, std::string& out, std::size_t* name_comparisons,
                              bool own_trace_id) {
  std::vector<std::string_view> names;
  std::vector<JsonElement> values;
  for (auto field : root) {
    if (is_known(field.key) || (own_trace_id && field.key == "traceId")) continue;
    names.push_back(field.key);
    values.push_back(field.value);
  }
  // A repeated name keeps its first value, in its first place, as every member look-up does.
  const std::vector<bool> first = first_of_each_name(names, name_comparisons);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!first[i]) continue;
    if (!out.empty()) out.push_back(',');
    core::append_json_string(out, names[i]);
    out.push_back(':');
    out += simdjson::to_string(values[i]);
  }
}

bool read_problem(JsonObject root, const DialectInput& in, Extract& out) {
  auto type = text_member(root, "type");
  auto title = text_member(root, "title");
  auto status = member(root, "status");
  const bool numeric_status = status && is_number(*status);
  bool fits = numeric_status && (type || title);
  if (!fits && is_problem_media_type(in.content_type))
    fits =
        type || title || text_member(root, "detail") || numeric_status || code_member(root, "code");
  if (!fits) return false;

  Extract ex;
  ex.errors = FieldErrors(in.field_error_budget);
  if (type) ex.type = std::string(*type);
  if (title) ex.title = std::string(*title);
  if (auto d = text_member(root, "detail")) ex.detail = std::string(*d);
  // A body already in our canonical shape names its specific code in `subcode` (its `code` is
  // the parent, which the status decides anyway): the subcode is the most specific code.
  if (auto sc = code_member(root, "subcode")) {
    ex.upstream_code = std::string(*sc);
  } else if (auto c = code_member(root, "code")) {
    ex.upstream_code = std::string(*c);
  } else if (type) {
    ex.upstream_code = std::string(type_uri_code(*type));
  }
  if (auto r = int_member(root, "retryAfter"); r && *r >= 0) ex.retry_after = r;

  DefaultFieldCode field_code{ex.upstream_code};
  if (auto errors = member(root, "errors")) {
    if (auto list = as_array(*errors)) {
      errors_from_array(*list, field_code, ex.errors);
    } else if (auto map = as_object(*errors)) {
      flatten_field_map(*map, field_code, ex.errors);  // ASP.NET ValidationProblemDetails
    }
  }
  // RFC 7807's example extension, [{name, reason}]; it also stays as an extension member.
  if (auto params = array_member(root, "invalid-params"))
    errors_from_array(*params, field_code, ex.errors);

  append_extension_members(root, ex.extensions, nullptr, in.own_trace_id);
  out = std::move(ex);
  return true;
}

}  // namespace problemgate::problem::internal
