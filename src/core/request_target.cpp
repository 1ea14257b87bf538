#include "problemgate/core/request_target.hpp"

namespace problemgate::core {

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_alnum(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_unreserved(unsigned char c) noexcept {
  return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

bool is_sub_delim(unsigned char c) noexcept {
  switch (c) {
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=': return true;
    default: return false;
  }
}

bool iequals_prefix(std::string_view s, std::string_view lower_prefix) noexcept {
  if (s.size() < lower_prefix.size()) return false;
  for (std::size_t i = 0; i < lower_prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_prefix[i]) return false;
  }
  return true;
}

/// Most paths are already normal: one pass decides whether the slow path is needed at all.
bool is_plainly_normal(std::string_view p) noexcept {
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '%' || c == '\\') return false;
    if (c == '/' && i + 1 < p.size() && (p[i + 1] == '/' || p[i + 1] == '.')) return false;
  }
  return true;
}

bool is_valid_reg_name(std::string_view h) noexcept {
  for (std::size_t i = 0; i < h.size(); ++i) {
    const auto c = static_cast<unsigned char>(h[i]);
    if (is_unreserved(c) || is_sub_delim(c)) continue;
    if (c == '%' && i + 2 < h.size() && hex_value(h[i + 1]) >= 0 && hex_value(h[i + 2]) >= 0) {
      i += 2;
      continue;
    }
    return false;
  }
  return true;
}

/// `*DIGIT` (RFC 3986 allows it empty), and a number a TCP port can be.
bool is_valid_port(std::string_view p) noexcept {
  if (p.size() > 5) return false;
  unsigned value = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

}  // namespace

bool is_valid_authority(std::string_view v) noexcept {
  if (v.empty()) return true;
  std::string_view host;
  std::string_view rest;
  if (v.front() == '[') {
    // IP-literal: IPv6 (and IPv4-in-IPv6) digits, colons and dots; zone ids and IPvFuture are
    // not accepted from clients.
    const auto close = v.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : v.substr(1, close - 1))
      if (hex_value(c) < 0 && c != ':' && c != '.') return false;
    host = v.substr(0, close + 1);
    rest = v.substr(close + 1);
  } else {
    const auto colon = v.find(':');
    host = v.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view{} : v.substr(colon);
    if (host.empty() || !is_valid_reg_name(host)) return false;  // IPv4 is a reg-name's subset
  }
  if (rest.empty()) return true;
  return rest.front() == ':' && is_valid_port(rest.substr(1));
}

TargetParts split_request_target(std::string_view target) noexcept {
  TargetParts out;
  if (target.empty() || target.find('#') != std::string_view::npos) return out;
  std::string_view rest;
  if (target.front() == '/') {
    out.form = TargetParts::Form::origin;
    rest = target;
  } else {
    std::size_t scheme_len = 0;
    if (iequals_prefix(target, "http://"))
      scheme_len = 7;
    else if (iequals_prefix(target, "https://"))
      scheme_len = 8;
    else
      return out;
    const std::string_view after = target.substr(scheme_len);
    const auto auth_end = after.find_first_of("/?");
    out.authority = after.substr(0, auth_end);
    if (out.authority.empty() || !is_valid_authority(out.authority)) {
      out.authority = {};
      return out;
    }
    out.form = TargetParts::Form::absolute;
    rest = auth_end == std::string_view::npos ? std::string_view{} : after.substr(auth_end);
  }
  const auto q = rest.find('?');
  out.path = rest.substr(0, q);
  if (q != std::string_view::npos) out.query = rest.substr(q);
  if (out.path.empty()) out.path = "/";  // "http://h" and "http://h?q" name the root
  return out;
}

PathVerdict normalize_path(std::string_view path, std::string& out, bool& escaped_separator) {
  escaped_separator = false;
  if (is_plainly_normal(path)) {
    out.assign(path);
    return PathVerdict::ok;
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.clear();
  bool trailing_slash = false;
  std::size_t i = path.starts_with('/') ? 1 : 0;
  for (;;) {
    std::size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    const bool last = end == path.size();
    // The segment is decoded straight into `out` behind a '/', then judged as a whole: a dot
    // segment is what it decodes to ("%2e%2E" is ".."), so it is recognised after decoding.
    const std::size_t mark = out.size();
    out.push_back('/');
    for (std::size_t j = i; j < end; ++j) {
      const char c = path[j];
      if (c == '\\') return PathVerdict::bad_character;
      if (c != '%') {
        out.push_back(c);
        continue;
      }
      const int hi = j + 2 < end ? hex_value(path[j + 1]) : -1;
      const int lo = j + 2 < end ? hex_value(path[j + 2]) : -1;
      if (hi < 0 || lo < 0) return PathVerdict::bad_escape;
      const auto byte = static_cast<unsigned char>(hi * 16 + lo);
      if (is_unreserved(byte)) {
        out.push_back(static_cast<char>(byte));
      } else {
        if (byte == '/' || byte == '\\') escaped_separator = true;
        out.push_back('%');
        out.push_back(kHex[hi]);
        out.push_back(kHex[lo]);
      }
      j += 2;
    }
    const std::string_view segment = std::string_view(out).substr(mark + 1);
    if (segment.empty() || segment == ".") {
      out.resize(mark);  // "//" merges; "/./" goes
      trailing_slash = last;
    } else if (segment == "..") {
      out.resize(mark);
      if (out.empty()) return PathVerdict::above_root;
      out.resize(out.rfind('/'));
      trailing_slash = last;
    } else {
      trailing_slash = false;
    }
    if (last) break;
    i = end + 1;
  }
  if (out.empty() || trailing_slash) out.push_back('/');
  return PathVerdict::ok;
}

}  // namespace problemgate::core
