#pragma once
#include <string>
#include <string_view>

namespace problemgate::core {

/// A request target split into what routing and forwarding need (RFC 9112 §3.2).
struct TargetParts {
  enum class Form { origin, absolute, invalid };
  Form form = Form::invalid;
  std::string_view authority;  ///< absolute-form only: host[:port], no userinfo
  std::string_view path;       ///< starts with '/' (absolute-form with an empty path: "/")
  std::string_view query;      ///< with its leading '?', or empty
};

/// Splits `target` as origin-form (`/p?q`) or absolute-form (`http://h/p?q`, `https://...`).
/// Anything else — authority-form, asterisk-form, a relative path, a fragment, userinfo or a
/// bad authority in absolute-form — is Form::invalid.
TargetParts split_request_target(std::string_view target) noexcept;

/// True when `v` is a valid Host field value: uri-host [":" port] (RFC 9110 §7.2, RFC 3986
/// §3.2.2): a reg-name of unreserved / pct-encoded / sub-delims, an IPv4 address, or an IP
/// literal in brackets; no userinfo, no path. An empty value is valid (RFC 9112 §3.2).
bool is_valid_authority(std::string_view v) noexcept;

enum class PathVerdict {
  ok,
  bad_escape,     ///< a '%' not followed by two hex digits
  bad_character,  ///< a raw backslash (not a URI character; some servers read it as '/')
  above_root,     ///< a ".." segment with nothing left to remove
};

/// The path as routed and forwarded, in normal form (RFC 3986 §6.2.2, Envoy's normalize_path
/// + merge_slashes): percent-encoded unreserved characters decoded, other escapes upper-cased,
/// "." and ".." segments removed, runs of '/' merged. `%2F` and `%5C` stay encoded (an encoded
/// separator is data, not structure) and set `escaped_separator`, so the caller can refuse
/// them. `path` starts with '/' and has no query. `out` is replaced.
PathVerdict normalize_path(std::string_view path, std::string& out, bool& escaped_separator);

}  // namespace problemgate::core
