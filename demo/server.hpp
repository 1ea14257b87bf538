#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace problemgate::demo {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9000;  ///< 0 picks a free port; see Server::local_address()
  unsigned threads = 1;
};

/// The demo legacy API server: HTTP/1.1 keep-alive, one io_context per worker thread (a
/// connection never leaves its thread, so sessions need no strand or lock); the acceptor on
/// thread 0 hands sockets out round-robin. Beast stays behind the pimpl.
class Server {
 public:
  /// Resolves, binds and listens, and installs the SIGINT/SIGTERM handler, so once this
  /// returns a client may connect and a signal stops run() cleanly.
  /// Throws std::system_error (bind failure, unknown host).
  explicit Server(const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The bound address as HOST:PORT (IPv6 in brackets), with the actual port.
  std::string local_address() const;

  /// Serves on `threads` threads (the caller's being one) until SIGINT, SIGTERM or stop().
  void run();

  /// Thread-safe; makes run() return soon after.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace problemgate::demo
