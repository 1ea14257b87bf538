#pragma once
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "problemgate/config/config.hpp"

namespace problemgate::proxy {

/// The gateway: worker threads (one io_context each, SO_REUSEPORT listeners), the shared
/// config snapshot and the signal handling. Beast and Asio stay behind the pimpl.
class Server {
 public:
  explicit Server(config::Config config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds every listener and writes `listening on HOST:PORT` for each to `out` (main passes
  /// stderr: stdout carries only access-log JSON lines).
  /// Throws std::system_error when an address cannot be bound (start-up is the only place
  /// where exceptions are used).
  void start(std::ostream& out);

  /// Runs the workers until SIGTERM/SIGINT (graceful drain up to limits.drain_timeout) or
  /// shutdown(). SIGHUP calls the reload hook. Returns the process exit code.
  int run();

  /// Starts a graceful drain. Thread-safe.
  void shutdown();

  /// Installs a new configuration snapshot on every worker. Thread-safe. Listener addresses,
  /// thread count and the admin listener cannot change live: a config that changes any of them
  /// is refused whole with config::ConfigError naming the key (config::restart_only_changes).
  void reload(config::Config config);

  /// How to re-read the configuration (SIGHUP, admin POST /reload). It returns the new config
  /// or throws config::ConfigError; then the old config stays.
  void set_config_loader(std::function<config::Config()> loader);

  /// Re-reads and installs the configuration now. Returns "" on success, else the reasons.
  /// Thread-safe.
  std::string reload_now();

  /// problemgate_build_info's version and commit labels. Call before start().
  void set_build_info(std::string_view version, std::string_view commit);

  /// The addresses actually bound (port 0 resolved), after start().
  std::vector<std::string> bound_addresses() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace problemgate::proxy
