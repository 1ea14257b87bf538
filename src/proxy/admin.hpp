#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <string>
#include <thread>

#include "problemgate/config/config.hpp"

namespace problemgate::proxy {

/// What the admin endpoints read from the server. Every callback must be thread-safe: the admin
/// listener runs on its own thread so a busy data plane never starves the probes.
struct AdminHooks {
  std::function<bool()> ready;                ///< listeners up and not draining
  std::function<std::string()> metrics;       ///< Prometheus text
  std::function<std::string()> config_json;  ///< effective config, secrets redacted
  /// Re-reads the config file; returns "" on success or the error messages.
  std::function<std::string()> reload;
};

/// The admin listener: GET /healthz, /readyz, /metrics, /config and POST /reload.
class AdminServer {
public:
  AdminServer(const config::Endpoint& listen, AdminHooks hooks);
  ~AdminServer();
  /// The bound address ("HOST:PORT"), after construction.
  const std::string& bound() const noexcept { return bound_; }
  void start();
  void stop();

private:
  boost::asio::io_context ioc_{1};
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  AdminHooks hooks_;
  std::string bound_;
  std::thread thread_;
};

}  // namespace problemgate::proxy
