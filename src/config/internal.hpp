#pragma once
// Private to the config module: the pieces load.cpp glues together. Parsing works on an
// nlohmann::ordered_json tree (ordered so upstreams keep the file's order and messages come out
// in reading order) and reports through one Diagnostics, so every problem is collected.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "problemgate/config/config.hpp"
#include "problemgate/config/load.hpp"

namespace problemgate::config::detail {

using Json = nlohmann::ordered_json;

/// A JSON pointer (RFC 6901) under construction: `path / "routes" / 2 / "upstream"`.
class Path {
 public:
  Path() = default;
  Path operator/(std::string_view key) const;
  Path operator/(std::size_t index) const;
  const std::string& str() const noexcept { return pointer_; }

 private:
  explicit Path(std::string p) : pointer_(std::move(p)) {}
  std::string pointer_;  // "" is the document root
};

/// JSON pointer -> 1-based line in the source, filled by yaml_to_json.
using LineMap = std::unordered_map<std::string, int>;

/// Collects problems as "SOURCE:LINE: /pointer: reason"; thrown once by throw_if_any.
class Diagnostics {
 public:
  Diagnostics(std::string source, const LineMap* lines)
      : source_(std::move(source)), lines_(lines) {}

  void error(const Path& path, std::string_view reason);
  /// For a place the line map can't find: a duplicate key shares its pointer with the first.
  void error_at(int line, const Path& path, std::string_view reason);
  /// For syntax errors, which have a line but no pointer.
  void error_at_line(int line, std::string_view reason);
  /// For problems that have no place in the document (flags, unreadable file).
  void error(std::string_view reason);
  bool empty() const noexcept { return entries_.empty(); }
  std::size_t count() const noexcept { return entries_.size(); }
  void throw_if_any();

 private:
  struct Entry {
    int line;  // 0 = unknown; sorts first so file-less problems lead
    std::size_t seq;
    std::string text;
  };
  int line_of(const std::string& pointer) const;

  std::string source_;
  const LineMap* lines_;
  std::vector<Entry> entries_;
};

/// YAML text -> JSON tree, following the YAML 1.2 core schema for plain scalars (so `off` and
/// `yes` stay strings) and recording each node's line. Throws YAML::Exception on bad syntax;
/// reports duplicate keys and non-scalar keys to `diag`.
Json yaml_to_json(std::string_view text, LineMap& lines, Diagnostics& diag);

/// A mapping the parser checked for unknown keys: its pointer and every key it accepts there.
struct KeySet {
  std::string pointer;
  std::vector<std::string> keys;
};

/// Fills `out` from the document root; problems go to `diag`, defaults stay where a value is
/// missing or broken so later checks don't cascade. `route_paths[i]` is the pointer of
/// out.routes[i] (entries that are not routes at all are dropped). When `key_sets` is given,
/// each mapping checked is appended to it (the schema test compares them with
/// config/problemgate.schema.json).
void parse_config(const Json& root, Config& out, std::vector<Path>& route_paths, Diagnostics& diag,
                  std::vector<KeySet>* key_sets = nullptr);

/// A route may leave out `upstream` when the file defines exactly one. Decided on the file
/// alone, before flags, so `--upstream` doesn't make such a file ambiguous.
void imply_upstreams(Config& cfg);

/// Applies flags over the parsed file (they win) before validation. A route it adds gets a
/// pointer in `route_paths` too.
void apply_overrides(const Overrides& o, Config& cfg, std::vector<Path>& route_paths,
                     Diagnostics& diag);

/// Cross-field rules: upstream references, duplicate names, overlapping routes, the default
/// rate-limit policy. `route_paths[i]` is routes[i]'s pointer (for messages).
void validate(Config& cfg, const std::vector<Path>& route_paths, Diagnostics& diag);

// ---- units.cpp: small parsers, each returns nullopt / an error text on bad input ----

/// "HOST:PORT" or "[V6]:PORT"; the host is stored without brackets. `error` says why not.
std::optional<Endpoint> parse_endpoint(std::string_view text, std::string& error);

struct HttpUrl {
  std::string host;
  std::uint16_t port = 80;  ///< 443 for https:// without a port
  bool https = false;
};
/// "http://host[:port][/]" or "https://host[:port][/]"; `error` names the problem (path, ...).
std::optional<HttpUrl> parse_http_url(std::string_view text, std::string& error);

struct RedisUrl {
  std::string host;
  std::uint16_t port = 6379;
  std::uint32_t db = 0;
  std::string username, password;
};
/// "redis://[[user]:password@]host[:port][/db]"; rediss:// (TLS) is refused with a reason.
std::optional<RedisUrl> parse_redis_url(std::string_view text, std::string& error);

/// ` (did you mean "x"?)` when one of `candidates` is within a typo of `word`, else "".
std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates);

/// A DNS name or IP literal usable in Host (no port). IPv6 must be bracketed.
bool is_valid_host(std::string_view host) noexcept;
/// RFC 9110 token (header names).
bool is_token(std::string_view s) noexcept;
/// lowercase_snake_case: [a-z0-9]+(_[a-z0-9]+)*
bool is_snake_code(std::string_view s) noexcept;

}  // namespace problemgate::config::detail
