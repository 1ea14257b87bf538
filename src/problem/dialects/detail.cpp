// Dialect 4, `detail`: DRF/Cloudsmith (seed 003) and FastAPI bodies.
#include "problem/extract.hpp"
#include "problem/field_errors.hpp"
#include "problem/json_util.hpp"

namespace problemgate::problem::internal {

bool read_detail(JsonObject root, const DialectInput& in, Extract& out) {
  auto d = member(root, "detail");
  if (!d) return false;

  Extract ex;
  ex.errors = FieldErrors(in.field_error_budget);
  auto code = code_member(root, "code");
  if (auto s = as_string(*d)) {
    ex.detail = std::string(*s);
  } else if (auto list = as_array(*d)) {
    // FastAPI: [{loc, msg, type}]; each entry's type is its code.
    DefaultFieldCode list_code{code.value_or("")};
    errors_from_array(*list, list_code, ex.errors);
    for (JsonElement item : *list) {
      auto e = as_object(item);
      if (!e) continue;
      if (auto msg = first_text(*e, "msg", "message")) {
        ex.detail = std::string(*msg);
        break;
      }
    }
  } else if (auto obj = as_object(*d)) {
    // FastAPI HTTPException(detail={...}): the object's own code and message win.
    if (auto c = code_member(*obj, "code")) code = c;
    if (auto msg = first_text(*obj, "message", "msg", "detail")) ex.detail = std::string(*msg);
  } else {
    return false;  // null, numbers, booleans: not this dialect
  }
  if (code) ex.upstream_code = std::string(*code);
  DefaultFieldCode field_code{ex.upstream_code};
  collect_field_errors(root, field_code, ex.errors);
  out = std::move(ex);
  return true;
}

}  // namespace problemgate::problem::internal
