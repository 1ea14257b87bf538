#pragma once
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "problemgate/config/config.hpp"

namespace problemgate::config {

/// Every problem found while loading, each "FILE: /json/pointer: reason". Thrown once, after
/// the whole file was checked, so an operator sees all of them together.
class ConfigError : public std::runtime_error {
public:
  explicit ConfigError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const noexcept { return problems_; }

private:
  std::vector<std::string> problems_;
};

/// Command-line / environment overrides (they win over the file).
struct Overrides {
  std::optional<std::string> listen;    ///< HOST:PORT
  std::optional<std::string> upstream;  ///< http://host:port -> upstream "default", route "/"
  std::optional<unsigned> threads;
};

/// Parses YAML (or JSON) text. `source` names the file in messages. Throws ConfigError.
Config load_config_text(std::string_view text, std::string_view source,
                        const Overrides& overrides = {});

/// Reads and parses a file. Throws ConfigError (also for an unreadable file).
Config load_config_file(const std::string& path, const Overrides& overrides = {});

/// No file: defaults plus overrides (zero-config sidecar). Throws ConfigError when the result
/// has no upstream or is otherwise invalid.
Config load_config_flags(const Overrides& overrides);

/// Parses "250ms", "10s", "5m", "1h" (and bare milliseconds); nullopt when malformed.
std::optional<Duration> parse_duration(std::string_view text);
/// Parses "64KiB", "1MiB", "1GiB", "512B" or plain bytes; nullopt when malformed.
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace problemgate::config
