#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "problemgate/config/config.hpp"

namespace problemgate::proxy {

/// What the admin endpoints read from the server. Every callback must be thread-safe: the admin
/// listener runs on its own thread so a busy data plane never starves the probes.
struct AdminHooks {
  std::function<bool()> ready;               ///< listeners up and not draining
  std::function<std::string()> metrics;      ///< Prometheus text
  std::function<std::string()> config_json;  ///< effective config, secrets redacted
  /// Re-reads the config file; returns "" on success or the error messages.
  std::function<std::string()> reload;
};

/// One admin listener. A controls listener serves everything; a probes listener only
/// GET /healthz, /readyz and /metrics (everything else is 404), so it can face the network.
struct AdminListener {
  config::Endpoint endpoint;
  bool controls = true;  ///< also GET /config and POST /reload
};

/// What an Authorization header says against the configured bearer token.
enum class BearerCheck { ok, missing, wrong };

/// `Authorization: Bearer <token>` (scheme case-insensitive, RFC 9110 §11.1) against `token`,
/// compared in time that depends only on the token's length. An empty `token` (none
/// configured) accepts anything. `missing`: no header, or another scheme.
BearerCheck check_bearer(std::string_view authorization, std::string_view token) noexcept;

/// The admin listeners: GET /healthz, /readyz, /metrics everywhere; GET /config and
/// POST /reload on a controls listener, behind the bearer token when one is configured. Every
/// control request is logged (info; a refused token at warn) with its peer address.
class AdminServer {
 public:
  /// Binds every listener; throws std::runtime_error naming the address when one can't be.
  /// `token` empty = the controls need no token (validation allows that on loopback only).
  AdminServer(const std::vector<AdminListener>& listeners, std::string token, AdminHooks hooks);
  ~AdminServer();
  /// The bound address ("HOST:PORT") of listeners[i], after construction.
  const std::string& bound(std::size_t i) const { return listeners_.at(i).bound; }
  void start();
  void stop();

 private:
  struct Listener {
    boost::asio::ip::tcp::acceptor acceptor;
    bool controls;
    std::string bound;
  };
  boost::asio::io_context ioc_{1};
  std::vector<Listener> listeners_;  // never resized after construction: coroutines hold references
  std::string token_;
  AdminHooks hooks_;
  std::thread thread_;
};

}  // namespace problemgate::proxy
