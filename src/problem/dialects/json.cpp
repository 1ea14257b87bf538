// Dialect 6, `json`: any other object (GitHub, AWS JSON, Kubernetes Status, JSON:API, GraphQL,
// Laravel).
#include "problem/code_case.hpp"
#include "problem/extract.hpp"
#include "problem/field_errors.hpp"
#include "problem/json_util.hpp"

namespace problemgate::problem::internal {

bool read_json(JsonObject root, const DialectInput& in, Extract& out) {
  Extract ex;
  ex.errors = FieldErrors(in.field_error_budget);
  const auto errors = array_member(root, "errors");
  std::optional<JsonObject> first_error;
  if (errors) {
    for (JsonElement item : *errors) {
      if (auto o = as_object(item)) {
        first_error = o;
        break;
      }
    }
  }
  const bool k8s_status = string_member(root, "kind") == std::optional<std::string_view>("Status");

  std::optional<std::string_view> code = code_member(root, "code");
  if (!code) code = code_member(root, "error_code");
  if (!code) code = code_member(root, "errorCode");
  if (!code) {
    if (auto aws = code_member(root, "__type")) code = aws_error_name(*aws);
  }
  if (!code && k8s_status) code = code_member(root, "reason");
  // GraphQL: the first error's extensions.code is the response's code (spec §3.2). Other entry
  // codes (JSON:API, GitHub's {resource, field, code}) stay on their field errors: the subcode is
  // the body's own code, never an entry's.
  if (!code && first_error) {
    if (auto ext = object_member(*first_error, "extensions")) code = code_member(*ext, "code");
  }
  if (code) ex.upstream_code = std::string(*code);

  auto detail = first_text(root, "message", "Message", "msg", "description", "error_message",
                           "errorMessage", "title");
  if (!detail) detail = text_member(root, "errors");  // Shopify: {"errors": "Not Found"}
  if (!detail && first_error) detail = first_text(*first_error, "detail", "message", "title");
  if (detail) ex.detail = std::string(*detail);

  DefaultFieldCode field_code{ex.upstream_code};
  collect_field_errors(root, field_code, ex.errors);
  if (k8s_status) {
    if (auto details = object_member(root, "details")) {
      if (auto causes = array_member(*details, "causes"))
        errors_from_array(*causes, field_code, ex.errors);
    }
  }
  out = std::move(ex);
  return true;
}

}  // namespace problemgate::problem::internal
