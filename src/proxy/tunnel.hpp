#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/intrusive/list_hook.hpp>

#include <chrono>
#include <cstdint>

#include "problemgate/config/config.hpp"
#include "problemgate/obs/metrics.hpp"
#include "problemgate/http1/deadline_socket.hpp"

namespace problemgate::proxy {

/// A running tunnel as its worker sees it: linked into the worker's list while the tunnel runs,
/// so a drain can end it (request_stop) when limits.drain_timeout has passed. Linking and
/// unlinking allocate nothing; a tunnel that ends unlinks itself.
class TunnelLink : public boost::intrusive::list_base_hook<
                       boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
 public:
  /// Ends the tunnel soon (reason `drain`): both sockets' pending operations are cancelled.
  /// Same thread as the tunnel only.
  void request_stop() noexcept {
    stop_requested_ = true;
    if (wake_) wake_->cancel();
  }
  bool stop_requested() const noexcept { return stop_requested_; }

 private:
  friend class TunnelRun;
  boost::asio::steady_timer* wake_ = nullptr;  // the running tunnel's watchdog timer
  bool stop_requested_ = false;
};

struct TunnelLimits {
  config::Duration idle_timeout;   ///< no byte either way this long: close
  config::Duration write_timeout;  ///< one write making no progress this long: close
};

struct TunnelResult {
  std::uint64_t bytes_up = 0;    ///< client -> upstream, the pending bytes included
  std::uint64_t bytes_down = 0;  ///< upstream -> client, the pending bytes included
  obs::TunnelClose reason = obs::TunnelClose::client_closed;  ///< the first cause of the end
};

/// Relays bytes both ways between `client` and `upstream` until both directions ended, after
/// an upstream's 101 (never before: the caller's job). Bytes already read past the two heads
/// (`from_client`, `from_upstream`) are written first, each to the other side. A clean end of
/// stream on one side is passed on as a half-close (shutdown of sending) to the other, which
/// may still talk until it closes too; a reset, a failed write, the idle or write timeout or a
/// stop request ends both directions at once. Never throws for I/O; both sockets are left
/// open (the caller closes or discards them) and must not be used by anyone else meanwhile.
///
/// Plain TCP for now: both streams are read and written through user space (one 16 KiB buffer
/// per direction), so a TLS stream can take a socket's place without changing the logic.
boost::asio::awaitable<TunnelResult> run_tunnel(http1::DeadlineSocket& client,
                                                http1::DeadlineSocket& upstream,
                                                boost::beast::flat_buffer& from_client,
                                                boost::beast::flat_buffer& from_upstream,
                                                TunnelLimits limits, TunnelLink& link);

}  // namespace problemgate::proxy
