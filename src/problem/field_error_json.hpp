#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace problemgate::problem::internal {

/// Appends one `errors` entry, `{"path":..,"code":..[,"message":..]}`, exactly as write_problem
/// writes it: the field-error budget measures entries with the writer itself.
void append_field_error(std::string& out, std::string_view path, std::string_view code,
                        std::optional<std::string_view> message);

}  // namespace problemgate::problem::internal
