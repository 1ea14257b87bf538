#include "problem/json_util.hpp"

#include <charconv>
#include <cmath>
#include <limits>

#include "problem/code_case.hpp"

namespace problemgate::problem::internal {

std::optional<std::int64_t> as_int(JsonElement e) noexcept {
  std::int64_t i = 0;
  if (e.get(i) == simdjson::SUCCESS) return i;
  std::uint64_t u = 0;
  if (e.get(u) == simdjson::SUCCESS) {
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  double d = 0;
  if (e.get(d) == simdjson::SUCCESS) {
    // Only integral doubles within range; 60.0 is 60, 1.5 and 1e300 are not integers.
    if (!std::isfinite(d) || d != std::trunc(d) || std::fabs(d) > 9.0e18) return std::nullopt;
    return static_cast<std::int64_t>(d);
  }
  std::string_view s;
  if (e.get(s) == simdjson::SUCCESS) {
    s = trim(s);
    if (s.empty()) return std::nullopt;
    auto r = std::from_chars(s.data(), s.data() + s.size(), i);
    if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
    return i;
  }
  return std::nullopt;
}

std::optional<std::string_view> code_member(JsonObject o, std::string_view key) noexcept {
  auto s = string_member(o, key);
  if (!s || trim(*s).empty() || is_numeric_code(*s)) return std::nullopt;
  return s;
}

}  // namespace problemgate::problem::internal
