// Dialect 5, `fieldmap`: DRF's default validation body, {"field": ["msg", ...], ...}.
#include "problem/extract.hpp"
#include "problem/field_errors.hpp"

namespace problemgate::problem::internal {

bool read_fieldmap(JsonObject root, const DialectInput& in, Extract& out) {
  if (!is_field_map(root)) return false;
  Extract ex;
  ex.errors = FieldErrors(in.field_error_budget);
  DefaultFieldCode field_code{{}};
  flatten_field_map(root, field_code, ex.errors);
  out = std::move(ex);
  return true;
}

}  // namespace problemgate::problem::internal
