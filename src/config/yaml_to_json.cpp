// yaml-cpp gives untyped scalars; the parser wants JSON types. Plain scalars are resolved with
// the YAML 1.2 core schema (not 1.1), so `admin.listen: off` stays the string "off" instead of
// turning into false, and quoted scalars are always strings (a quoted "8080" is text).
#include <algorithm>
#include <charconv>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "config/internal.hpp"

namespace problemgate::config::detail {

namespace {

bool is_one_of(const std::string& s, std::initializer_list<const char*> words) {
  for (const char* w : words) {
    if (s == w) return true;
  }
  return false;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

/// Consumes a run of digits from the front of `s`; returns how many there were.
std::size_t take_digits(std::string_view& s) {
  std::size_t n = 0;
  while (n < s.size() && is_digit(s[n])) ++n;
  s.remove_prefix(n);
  return n;
}

/// Consumes one of `chars` from the front of `s` if one is there.
bool take_one_of(std::string_view& s, std::string_view chars) {
  if (s.empty() || chars.find(s.front()) == std::string_view::npos) return false;
  s.remove_prefix(1);
  return true;
}

/// The core schema's decimal float, [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, checked
/// by hand (`.inf` and `.nan` are not numbers any config key wants, so they stay text).
bool is_core_float(std::string_view s) {
  take_one_of(s, "+-");
  const std::size_t whole = take_digits(s);
  const std::size_t fraction = take_one_of(s, ".") ? take_digits(s) : 0;
  if (whole == 0 && fraction == 0) return false;  // "", ".", "+.", "e5"
  if (take_one_of(s, "eE")) {
    take_one_of(s, "+-");
    if (take_digits(s) == 0) return false;  // "1e", "1e+"
  }
  return s.empty();
}

Json resolve_plain(const std::string& s) {
  if (s.empty() || is_one_of(s, {"~", "null", "Null", "NULL"})) return nullptr;
  if (is_one_of(s, {"true", "True", "TRUE"})) return true;
  if (is_one_of(s, {"false", "False", "FALSE"})) return false;

  const char* first = s.data();
  const char* last = s.data() + s.size();
  const char* digits = (*first == '+' || *first == '-') ? first + 1 : first;
  if (digits != last && std::all_of(digits, last, is_digit)) {
    if (*first == '-') {
      std::int64_t v = 0;
      if (auto r = std::from_chars(first, last, v); r.ec == std::errc{} && r.ptr == last) return v;
    } else {
      std::uint64_t v = 0;
      if (auto r = std::from_chars(digits, last, v); r.ec == std::errc{} && r.ptr == last) return v;
    }
    return s;  // out of range: leave it as text and let the typed getter complain
  }
  if (is_core_float(s)) {
    try {
      return std::stod(s);
    } catch (const std::out_of_range&) {
      return s;
    }
  }
  return s;
}

class Converter {
 public:
  Converter(LineMap& lines, Diagnostics& diag) : lines_(lines), diag_(diag) {}

  Json convert(const YAML::Node& node, const Path& path) {
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null: return nullptr;
      case YAML::NodeType::Scalar: {
        const std::string& tag = node.Tag();
        if (tag == "?") return resolve_plain(node.Scalar());
        return node.Scalar();  // quoted, block, or explicitly tagged: keep the text
      }
      case YAML::NodeType::Sequence: {
        Json arr = Json::array();
        std::size_t i = 0;
        for (const auto& item : node) {
          const Path p = path / i++;
          remember(p, item.Mark());
          arr.push_back(convert(item, p));
        }
        return arr;
      }
      case YAML::NodeType::Map: {
        Json obj = Json::object();
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) {
            remember(path / "?", kv.first.Mark());
            diag_.error(path / "?", "keys must be plain strings");
            continue;
          }
          const std::string key = kv.first.Scalar();
          const Path p = path / key;
          if (obj.contains(key)) {
            // At the duplicate's own line: the first one's is where the pointer leads.
            const int line = kv.first.Mark().line >= 0 ? kv.first.Mark().line + 1 : 0;
            std::string reason = "duplicate key \"" + key + "\"";
            if (auto first = lines_.find(p.str()); first != lines_.end()) {
              reason += " (first at line " + std::to_string(first->second) + ")";
            }
            diag_.error_at(line, p, reason);
            continue;
          }
          remember(p, kv.first.Mark());
          obj[key] = convert(kv.second, p);
        }
        return obj;
      }
    }
    return nullptr;
  }

 private:
  void remember(const Path& p, const YAML::Mark& mark) {
    if (mark.line >= 0) lines_.emplace(p.str(), mark.line + 1);
  }

  LineMap& lines_;
  Diagnostics& diag_;
};

}  // namespace

Json yaml_to_json(std::string_view text, LineMap& lines, Diagnostics& diag) {
  const YAML::Node root = YAML::Load(std::string(text));
  return Converter(lines, diag).convert(root, Path{});
}

}  // namespace problemgate::config::detail
