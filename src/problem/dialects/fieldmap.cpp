// Dialect 5, `fieldmap`: DRF's default validation body, {"field": ["msg", ...], ...}.
#include "problem/extract.hpp"
#include "problem/field_errors.hpp"
#include "problem/json_util.hpp"

namespace problemgate::problem::internal {

bool read_fieldmap(JsonObject root, const DialectInput& in, Extract& out) {
  if (!is_field_map(root)) return false;
  Extract ex;
  ex.errors = FieldErrors(in.field_error_budget);
  DefaultFieldCode field_code{{}};
  // {"errors": {field: [msgs]}} alone (Rails, Shopify) is the Laravel/ASP.NET errors map without
  // a message: its keys are the paths (spec §3.3), not "errors.<key>".
  JsonObject map = root;
  if (root.size() == 1) {
    if (auto inner = object_member(root, "errors")) map = *inner;
  }
  flatten_field_map(map, field_code, ex.errors);
  out = std::move(ex);
  return true;
}

}  // namespace problemgate::problem::internal
