#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "problemgate/config/config.hpp"

namespace problemgate::config {

/// Every problem found while loading, each "FILE:LINE: /json/pointer: reason" (LINE when
/// known), sorted by line. Thrown once, after the whole file was checked, so an operator sees
/// all of them together. what() is all of them joined by newlines.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const noexcept { return problems_; }

 private:
  std::vector<std::string> problems_;
};

/// Command-line / environment overrides (they win over the file). main maps --listen /
/// PROBLEMGATE_LISTEN, --upstream / PROBLEMGATE_UPSTREAM, --admin / PROBLEMGATE_ADMIN and
/// --probes / PROBLEMGATE_PROBES onto these.
struct Overrides {
  std::optional<std::string> listen;  ///< HOST:PORT[,HOST:PORT...]; replaces `listen`
  /// http://host:port: defines or re-points upstream "default" (its other settings from the
  /// file stay); adds route "default" for "/" when the file has no routes.
  std::optional<std::string> upstream;
  std::optional<unsigned> threads;    ///< 0 = auto
  std::optional<std::string> admin;   ///< HOST:PORT or off; replaces `admin.listen`
  std::optional<std::string> probes;  ///< HOST:PORT or off; replaces `admin.probes_listen`
};

/// Parses YAML (or JSON) text. `source` names the file in messages. Throws ConfigError.
Config load_config_text(std::string_view text, std::string_view source,
                        const Overrides& overrides = {});

/// Reads and parses a file. Throws ConfigError (also for an unreadable file).
Config load_config_file(const std::string& path, const Overrides& overrides = {});

/// No file: defaults plus overrides (zero-config sidecar). Throws ConfigError when the result
/// has no upstream or is otherwise invalid.
Config load_config_flags(const Overrides& overrides);

/// What a reload cannot change live: `listen`, `threads` and `admin.listen` (their sockets and
/// threads exist once). One problem per such key whose value in `next` differs from what runs,
/// "FILE: /listen: cannot change on a reload (...): restart to apply it"; empty when the reload
/// may go ahead. `running` holds the addresses actually bound and the thread count in use: a
/// file that says port 0 ("any free port") matches whichever port was bound.
std::vector<std::string> restart_only_changes(const Config& running, const Config& next);

/// Parses "250ms", "10s", "5m", "1h"; nullopt when malformed. A bare number is malformed (it
/// has no unit), except "0".
std::optional<Duration> parse_duration(std::string_view text);
/// Parses "64KiB", "1MiB", "1GiB", "512B" or plain bytes; nullopt when malformed. Decimal
/// units ("KB") are rejected on purpose: their meaning differs between tools.
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace problemgate::config
