#pragma once
#include <span>
#include <string_view>
#include <vector>

#include "problemgate/http1/head_scanner.hpp"

namespace problemgate::http1 {

/// ASCII case-insensitive equality (field names, tokens).
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    if ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z') return false;
  }
  return true;
}

/// Calls f(token) for each non-empty element of a comma-separated list, OWS trimmed.
template <class F>
void for_each_token(std::string_view list, F&& f) {
  std::size_t pos = 0;
  while (pos <= list.size()) {
    std::size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view t = list.substr(pos, comma - pos);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (!t.empty()) f(t);
    pos = comma + 1;
  }
}

/// A scanned head: its bytes and the spans of its field lines (see scan_*_head). Views only:
/// valid while the bytes and the span vector are.
struct HeadView {
  std::string_view bytes;
  std::span<const FieldSpan> fields;

  std::string_view name(const FieldSpan& f) const noexcept {
    return bytes.substr(f.name_off, f.name_len);
  }
  std::string_view value(const FieldSpan& f) const noexcept {
    return bytes.substr(f.value_off, f.value_len);
  }

  /// The first field called `name` (its value may be empty), or nullptr.
  const FieldSpan* find(std::string_view name) const noexcept {
    for (const auto& f : fields)
      if (f.name_len == name.size() && iequals(this->name(f), name)) return &f;
    return nullptr;
  }
  /// The first value of `name`, empty when absent.
  std::string_view get(std::string_view name) const noexcept {
    const FieldSpan* f = find(name);
    return f ? value(*f) : std::string_view{};
  }
  /// How many field lines are called `name`.
  std::size_t count(std::string_view name) const noexcept {
    std::size_t n = 0;
    for (const auto& f : fields)
      if (f.name_len == name.size() && iequals(this->name(f), name)) ++n;
    return n;
  }
  /// True when a token-list field `name` (any of its lines) contains `token`.
  bool has_token(std::string_view name, std::string_view token) const {
    bool found = false;
    for (const auto& f : fields)
      if (f.name_len == name.size() && iequals(this->name(f), name))
        for_each_token(value(f), [&](std::string_view t) { found = found || iequals(t, token); });
    return found;
  }
};

/// Field names a message must not carry past this proxy, beyond the ones it sets itself:
/// the hop-by-hop fields (RFC 9110 §7.6.1) and every name listed in Connection.
class NameSet {
 public:
  void clear() noexcept { names_.clear(); }
  void add(std::string_view n) { names_.push_back(n); }
  /// The fixed hop-by-hop names plus those a head's Connection fields list.
  void add_hop_by_hop(const HeadView& head) {
    for (std::string_view n :
         {std::string_view("connection"), std::string_view("keep-alive"),
          std::string_view("proxy-connection"), std::string_view("te"), std::string_view("trailer"),
          std::string_view("transfer-encoding"), std::string_view("upgrade")})
      names_.push_back(n);
    for (const auto& f : head.fields)
      if (f.name_len == 10 && iequals(head.name(f), "connection"))
        for_each_token(head.value(f), [&](std::string_view t) {
          if (!is_framing_field(t)) names_.push_back(t);
        });
  }
  /// Fields a Connection option never removes: the message's own framing and Host. Dropping
  /// Content-Length would leave a body unframed on a kept-alive connection (a desync), and a
  /// request without Host is not HTTP/1.1.
  static bool is_framing_field(std::string_view name) noexcept {
    return iequals(name, "content-length") || iequals(name, "host");
  }
  bool contains(std::string_view name) const noexcept {
    for (std::string_view n : names_)
      if (n.size() == name.size() && iequals(n, name)) return true;
    return false;
  }

 private:
  std::vector<std::string_view> names_;
};

}  // namespace problemgate::http1
