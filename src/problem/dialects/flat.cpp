// Dialect 3, `flat`: `error` is a string (seed 001, OAuth 2, Slack, Spring Boot's default body).
#include "problem/code_case.hpp"
#include "problem/extract.hpp"
#include "problem/field_errors.hpp"
#include "problem/json_util.hpp"

namespace problemgate::problem::internal {

bool read_flat(JsonObject root, const DialectInput& in, Extract& out) {
  auto error = string_member(root, "error");
  if (!error) return false;

  Extract ex;
  ex.errors = FieldErrors(in.field_error_budget);
  // A string `code` beside `error` is the specific one (Fastify: "FST_ERR_VALIDATION" beside
  // "Bad Request"); else `error` itself, which subcode_for() drops when it is a sentence.
  if (auto code = code_member(root, "code")) {
    ex.upstream_code = std::string(*code);
  } else {
    ex.upstream_code = std::string(*error);
  }
  auto detail = first_text(root, "details", "error_description", "message");
  // Spring Boot's placeholder says nothing.
  if (detail && *detail == "No message available") detail = std::nullopt;
  if (detail) {
    ex.detail = std::string(*detail);
  } else if (!trim(*error).empty()) {
    ex.detail = std::string(*error);
  }

  ex.rate_limit.limit = int_member(root, "limit");
  ex.rate_limit.remaining = int_member(root, "remaining");
  ex.rate_limit.reset = int_member(root, "reset");
  ex.rate_limit.retry_after = int_member(root, "retry_after");
  if (ex.rate_limit.retry_after && *ex.rate_limit.retry_after >= 0)
    ex.retry_after = ex.rate_limit.retry_after;

  DefaultFieldCode field_code{ex.upstream_code};
  if (auto details = member(root, "details")) {
    if (auto list = as_array(*details)) {
      errors_from_array(*list, field_code, ex.errors);
    } else if (auto map = as_object(*details); map && is_field_map(*map)) {
      flatten_field_map(*map, field_code, ex.errors);
    }
  }
  collect_field_errors(root, field_code, ex.errors);
  out = std::move(ex);
  return true;
}

}  // namespace problemgate::problem::internal
