// Durations, sizes, addresses and the small lexical checks the parser needs.
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <limits>

#include "config/internal.hpp"
#include "problemgate/core/ip_address.hpp"

namespace problemgate::config {

namespace {

// Leading decimal digits of `text` as a number; nullopt on none or overflow.
std::optional<std::uint64_t> leading_number(std::string_view text, std::size_t& used) {
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr == text.data()) return std::nullopt;
  used = static_cast<std::size_t>(ptr - text.data());
  return value;
}

std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
  if (b != 0 && a > std::numeric_limits<std::uint64_t>::max() / b) return std::nullopt;
  return a * b;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  std::size_t used = 0;
  auto number = leading_number(text, used);
  if (!number) return std::nullopt;
  const std::string_view unit = text.substr(used);
  std::uint64_t scale = 0;
  // A bare number has no unit to read it in: `window: 60` read as 60 ms would be a limit 1000x
  // looser than meant. Only 0 is the same in every unit (as in Go's time.ParseDuration).
  if (unit.empty())
    scale = *number == 0 ? 1 : 0;
  else if (unit == "ms")
    scale = 1;
  else if (unit == "s")
    scale = 1000;
  else if (unit == "m")
    scale = 60 * 1000;
  else if (unit == "h")
    scale = 60 * 60 * 1000;
  else
    return std::nullopt;
  if (scale == 0) return std::nullopt;
  auto ms = checked_mul(*number, scale);
  // Duration's rep is signed 64-bit; anything near that is a typo, not a timeout.
  if (!ms || *ms > static_cast<std::uint64_t>(std::numeric_limits<Duration::rep>::max()))
    return std::nullopt;
  return Duration{static_cast<Duration::rep>(*ms)};
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t used = 0;
  auto number = leading_number(text, used);
  if (!number) return std::nullopt;
  const std::string_view unit = text.substr(used);
  std::uint64_t scale = 0;
  // Binary units only: "KB" is 1000 or 1024 depending on who you ask, so it is rejected.
  if (unit.empty() || unit == "B")
    scale = 1;
  else if (unit == "KiB")
    scale = std::uint64_t{1} << 10;
  else if (unit == "MiB")
    scale = std::uint64_t{1} << 20;
  else if (unit == "GiB")
    scale = std::uint64_t{1} << 30;
  else
    return std::nullopt;
  return checked_mul(*number, scale);
}

}  // namespace problemgate::config

namespace problemgate::config::detail {

namespace {

bool is_alnum(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_ipv6_literal(std::string_view s) {
  auto ip = core::parse_ip(s);
  return ip && s.find(':') != std::string_view::npos;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc{} || ptr != s.data() + s.size() || value > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// Splits "host:port" / "[v6]:port" / "host" / "[v6]". `port` is empty when absent.
bool split_host_port(std::string_view text, std::string_view& host, std::string_view& port,
                     std::string& error) {
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      error = "unterminated '[' in IPv6 address";
      return false;
    }
    host = text.substr(1, close - 1);
    if (!is_ipv6_literal(host)) {
      error = "invalid IPv6 address \"" + std::string(host) + "\"";
      return false;
    }
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty()) {
      port = {};
      return true;
    }
    if (rest.front() != ':') {
      error = "expected ':' after ']'";
      return false;
    }
    port = rest.substr(1);
    if (port.empty()) {
      error = "missing port after ':'";
      return false;
    }
    return true;
  }
  const auto colon = text.find(':');
  if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos) {
    error = "IPv6 addresses need brackets, e.g. [::1]:8080";
    return false;
  }
  host = text.substr(0, colon);
  port = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
  if (colon != std::string_view::npos && port.empty()) {
    error = "missing port after ':'";
    return false;
  }
  return true;
}

}  // namespace

bool is_valid_host(std::string_view host) noexcept {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return is_ipv6_literal(host.substr(1, host.size() - 2));
  }
  if (host.empty() || host.size() > 253) return false;
  std::size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    // '_' is not DNS but shows up in container service names; tolerate it.
    if (!is_alnum(c) && c != '-' && c != '_') return false;
    if (++label > 63) return false;
  }
  return label != 0;
}

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (is_alnum(c)) continue;
    if (std::strchr("!#$%&'*+-.^_`|~", c) == nullptr || c == '\0') return false;
  }
  return true;
}

bool is_snake_code(std::string_view s) noexcept {
  if (s.empty() || s.front() == '_' || s.back() == '_') return false;
  char prev = '\0';
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok || (c == '_' && prev == '_')) return false;
    prev = c;
  }
  return true;
}

std::optional<Endpoint> parse_endpoint(std::string_view text, std::string& error) {
  std::string_view host, port;
  if (!split_host_port(text, host, port, error)) return std::nullopt;
  if (host.empty()) {
    error = "missing host (use 0.0.0.0:PORT for every IPv4 address, [::]:PORT for IPv6)";
    return std::nullopt;
  }
  if (port.empty()) {
    error = "missing port: expected HOST:PORT";
    return std::nullopt;
  }
  const bool v6 = host.find(':') != std::string_view::npos;
  if (!v6 && !is_valid_host(host)) {
    error = "invalid host \"" + std::string(host) + "\"";
    return std::nullopt;
  }
  auto p = parse_port(port);
  if (!p) {
    error = "invalid port \"" + std::string(port) + "\" (0-65535)";
    return std::nullopt;
  }
  return Endpoint{std::string(host), *p, std::nullopt};
}

std::optional<HttpUrl> parse_http_url(std::string_view text, std::string& error) {
  auto starts_with_nocase = [&](std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
    }
    return true;
  };
  const bool https = starts_with_nocase("https://");
  if (!https && !starts_with_nocase("http://")) {
    error = "expected an http://HOST:PORT or https://HOST:PORT URL";
    return std::nullopt;
  }
  std::string_view rest = text.substr(https ? 8 : 7);
  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string_view path =
      slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    error = "credentials in upstream URLs are not supported";
    return std::nullopt;
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    error = "upstream URL must not have a query or fragment";
    return std::nullopt;
  }
  if (!path.empty() && path != "/") {
    error = "upstream URL must not have a path (routes forward the request path as is)";
    return std::nullopt;
  }
  std::string_view host, port;
  if (!split_host_port(authority, host, port, error)) return std::nullopt;
  if (host.empty()) {
    error = "missing host in upstream URL";
    return std::nullopt;
  }
  if (host.find(':') == std::string_view::npos && !is_valid_host(host)) {
    error = "invalid host \"" + std::string(host) + "\" in upstream URL";
    return std::nullopt;
  }
  HttpUrl url;
  url.host = std::string(host);
  url.https = https;
  if (https) url.port = 443;
  if (!port.empty()) {
    auto p = parse_port(port);
    if (!p || *p == 0) {
      error = "invalid port \"" + std::string(port) + "\" in upstream URL (1-65535)";
      return std::nullopt;
    }
    url.port = *p;
  }
  return url;
}

}  // namespace problemgate::config::detail

namespace problemgate::config::detail {

std::optional<RedisUrl> parse_redis_url(std::string_view text, std::string& error) {
  auto starts_with_nocase = [&](std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
    }
    return true;
  };
  if (starts_with_nocase("rediss://")) {
    error =
        "rediss:// (TLS to Redis) is not supported: use redis:// on a trusted network, or a local TLS tunnel";
    return std::nullopt;
  }
  if (!starts_with_nocase("redis://")) {
    error = "expected a redis://[:PASSWORD@]HOST:PORT/DB URL";
    return std::nullopt;
  }
  std::string_view rest = text.substr(8);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    error = "Redis URL must not have a query or fragment";
    return std::nullopt;
  }
  RedisUrl url;
  // The last '@' ends the credentials: a password may contain '@', a host cannot.
  const auto at = rest.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      error = "Redis URL credentials must be :PASSWORD or USER:PASSWORD";
      return std::nullopt;
    }
    url.username = std::string(userinfo.substr(0, colon));
    url.password = std::string(userinfo.substr(colon + 1));
    if (url.password.empty()) {
      error = "empty password in Redis URL";
      return std::nullopt;
    }
    rest = rest.substr(at + 1);
  }
  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      std::uint32_t n = 0;
      auto [ptr, ec] = std::from_chars(db.data(), db.data() + db.size(), n);
      if (ec != std::errc{} || ptr != db.data() + db.size() || n > 15'999) {
        error = "invalid database \"" + std::string(db) + "\" in Redis URL (a number, e.g. /0)";
        return std::nullopt;
      }
      url.db = n;
    }
  }
  std::string_view host, port;
  if (!split_host_port(authority, host, port, error)) return std::nullopt;
  if (host.empty()) {
    error = "missing host in Redis URL";
    return std::nullopt;
  }
  if (host.find(':') == std::string_view::npos && !is_valid_host(host)) {
    error = "invalid host \"" + std::string(host) + "\" in Redis URL";
    return std::nullopt;
  }
  url.host = std::string(host);
  if (!port.empty()) {
    auto p = parse_port(port);
    if (!p || *p == 0) {
      error = "invalid port \"" + std::string(port) + "\" in Redis URL (1-65535)";
      return std::nullopt;
    }
    url.port = *p;
  }
  return url;
}

}  // namespace problemgate::config::detail
