#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <simdjson.h>

// Small typed accessors over simdjson's DOM using its error-code API (no exceptions).
// Object look-ups return the first member of that name: duplicate keys, first wins.
namespace problemgate::problem::internal {

using JsonElement = simdjson::dom::element;
using JsonObject = simdjson::dom::object;
using JsonArray = simdjson::dom::array;

inline std::optional<JsonElement> member(JsonObject o, std::string_view key) noexcept {
  JsonElement e;
  if (o.at_key(key).get(e) != simdjson::SUCCESS) return std::nullopt;
  return e;
}

inline std::optional<std::string_view> as_string(JsonElement e) noexcept {
  std::string_view s;
  if (e.get(s) != simdjson::SUCCESS) return std::nullopt;
  return s;
}

inline std::optional<JsonObject> as_object(JsonElement e) noexcept {
  JsonObject o;
  if (e.get(o) != simdjson::SUCCESS) return std::nullopt;
  return o;
}

inline std::optional<JsonArray> as_array(JsonElement e) noexcept {
  JsonArray a;
  if (e.get(a) != simdjson::SUCCESS) return std::nullopt;
  return a;
}

inline std::optional<std::string_view> string_member(JsonObject o, std::string_view key) noexcept {
  auto e = member(o, key);
  return e ? as_string(*e) : std::nullopt;
}

/// A non-empty string member (after trimming nothing: upstream text is kept as written).
inline std::optional<std::string_view> text_member(JsonObject o, std::string_view key) noexcept {
  auto s = string_member(o, key);
  if (!s || s->find_first_not_of(" \t\r\n") == std::string_view::npos) return std::nullopt;
  return s;
}

inline std::optional<JsonObject> object_member(JsonObject o, std::string_view key) noexcept {
  auto e = member(o, key);
  return e ? as_object(*e) : std::nullopt;
}

inline std::optional<JsonArray> array_member(JsonObject o, std::string_view key) noexcept {
  auto e = member(o, key);
  return e ? as_array(*e) : std::nullopt;
}

/// An integer from a JSON number (integral) or a string of digits ("60").
std::optional<std::int64_t> as_int(JsonElement e) noexcept;

inline std::optional<std::int64_t> int_member(JsonObject o, std::string_view key) noexcept {
  auto e = member(o, key);
  return e ? as_int(*e) : std::nullopt;
}

/// A code member: a string that is not purely numeric, else nullopt.
std::optional<std::string_view> code_member(JsonObject o, std::string_view key) noexcept;

/// First present text member among `keys`.
template <class... Keys>
std::optional<std::string_view> first_text(JsonObject o, Keys... keys) noexcept {
  std::optional<std::string_view> r;
  ((r ? void() : void(r = text_member(o, keys))), ...);
  return r;
}

}  // namespace problemgate::problem::internal
