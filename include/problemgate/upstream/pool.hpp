#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "problemgate/config/config.hpp"
#include "problemgate/http1/deadline_socket.hpp"
#include "problemgate/upstream/endpoint.hpp"

namespace problemgate::upstream {

/// One connection to an upstream, with the read buffer that belongs to it (bytes left in the
/// buffer after a response make the connection unusable: see UpstreamPool::release).
struct Connection {
  explicit Connection(const boost::asio::any_io_executor& ex) : stream(ex) {}
  http1::DeadlineSocket stream;
  boost::beast::flat_buffer buffer;
  std::chrono::steady_clock::time_point idle_since{};
  std::uint32_t requests = 0;
  /// Set when the last response is one after which upstreams are known to send stray bytes
  /// (a body after HEAD, 204 or 304): the next reuse is checked however short the idle time.
  bool check_on_reuse = false;
  /// The TLS context the connection was made with (https:// upstreams), kept with it.
  std::shared_ptr<boost::asio::ssl::context> tls_ctx;
};

/// Why acquiring a connection failed.
/// The name an https:// upstream's endpoint is asked for (SNI) and verified against:
/// tls.server_name, else the host of the configured target `authority` ("host:port").
std::string tls_server_name(const config::Upstream& upstream, std::string_view authority);

/// tls_certificate: the upstream's certificate did not verify (chain, expiry, name);
/// tls_protocol: any other TLS handshake failure (RFC 9209 tls_certificate_error /
/// tls_protocol_error).
enum class AcquireError { none, refused, timeout, exhausted, tls_certificate, tls_protocol };

struct Acquired {
  std::unique_ptr<Connection> conn;
  AcquireError error = AcquireError::none;
  bool reused = false;
};

/// Keep-alive pool for one upstream on one worker thread. Not thread-safe by design: each
/// worker owns its pools, so a connection never crosses threads and needs no lock.
class UpstreamPool {
 public:
  /// A pool for the upstream's host:port, resolved at the first connect.
  UpstreamPool(boost::asio::any_io_executor ex, config::Upstream upstream);
  /// A pool for one endpoint of the upstream (the balancer's), connecting to its address only.
  /// With `tls` (an https:// upstream), each new connection makes a TLS handshake within
  /// connect_timeout: SNI and the verified name are tls.server_name or the endpoint's host,
  /// and the pool's last session is offered for resumption.
  UpstreamPool(boost::asio::any_io_executor ex, config::Upstream upstream,
               std::shared_ptr<EndpointState> endpoint,
               std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~UpstreamPool();

  /// The most recently used idle connection that is still usable, or nullptr. Never suspends:
  /// reuse is the common case, and needs neither a coroutine frame nor a resumption. The
  /// connection is first checked with one non-blocking peek, unless the request is
  /// `retryable` and the connection was idle for less than `reuse_check_after` (see pool.cpp).
  std::unique_ptr<Connection> take_idle(bool retryable = false);
  /// A new connection within connect_timeout. Fails with `exhausted` when max_connections are
  /// open (idle + in use).
  boost::asio::awaitable<Acquired> connect();

  /// Returns a connection whose last response was fully read and allows keep-alive (closes
  /// it instead when the pool is retired).
  void release(std::unique_ptr<Connection> conn);
  /// Forgets a connection that must not be reused (closes it).
  void discard(std::unique_ptr<Connection> conn);

  /// Replaces the settings (hot reload); existing idle connections are kept.
  void update(config::Upstream upstream) { upstream_ = std::move(upstream); }

  const config::Upstream& settings() const noexcept { return upstream_; }
  std::size_t idle_count() const noexcept { return idle_.size(); }
  std::size_t open_count() const noexcept { return open_; }
  /// Connections in use or being opened: this worker's requests in flight to the endpoint.
  std::size_t in_use() const noexcept { return open_ - idle_.size(); }
  /// The endpoint this pool connects to (null for a pool made from host:port).
  const std::shared_ptr<EndpointState>& endpoint() const noexcept { return endpoint_; }
  std::uint64_t connects() const noexcept { return connects_; }
  std::uint64_t reuses() const noexcept { return reuses_; }
  /// TLS handshakes that resumed the pool's session (abbreviated handshakes).
  std::uint64_t tls_resumed() const noexcept { return tls_resumed_; }
  /// Closes every idle connection (drain, shutdown).
  void close_idle();
  /// Takes the pool out of service: a reload dropped its upstream or changed its address. Its
  /// idle connections are closed and connections released later are closed too, so none is
  /// handed out again; requests still using the pool finish on it.
  void retire() {
    retired_ = true;
    close_idle();
  }
  bool retired() const noexcept { return retired_; }
  /// Closes idle connections past idle_timeout or closed by the peer, so sockets do not pile
  /// up between requests (called periodically by the worker).
  void sweep();

 private:
  void keep_session(Connection& conn);

  boost::asio::any_io_executor ex_;
  config::Upstream upstream_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::shared_ptr<EndpointState> endpoint_;
  std::vector<boost::asio::ip::tcp::endpoint>
      endpoints_;  // resolved once (or the endpoint's), then reused
  std::shared_ptr<boost::asio::ssl::context> tls_;
  std::string server_name_;               // SNI and the name verified (TLS only)
  std::shared_ptr<SSL_SESSION> session_;  // the last resumable session (TLS only)
  std::size_t open_ = 0;
  std::uint64_t tls_resumed_ = 0;
  std::uint64_t connects_ = 0;
  std::uint64_t reuses_ = 0;
  bool retired_ = false;
};

}  // namespace problemgate::upstream
