#include "proxy/tunnel.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <optional>

namespace problemgate::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using FlatBuffer = boost::beast::flat_buffer;

//------------------------------------------------------------------------------------------------

/// One tunnel's state, shared by its two pumps (one per direction) and its watchdog, all on
/// the worker's thread: no locks. It lives in run_tunnel's frame, which outlives both pumps.
class TunnelRun {
 public:
  using clock = std::chrono::steady_clock;

  TunnelRun(http1::DeadlineSocket& client, http1::DeadlineSocket& upstream, FlatBuffer& from_client,
            FlatBuffer& from_upstream, TunnelLimits limits, TunnelLink& link)
      : up_{&client, &upstream, &from_client, obs::TunnelClose::client_closed,
            obs::TunnelClose::upstream_closed},
        down_{&upstream, &client, &from_upstream, obs::TunnelClose::upstream_closed,
              obs::TunnelClose::client_closed},
        limits_(limits),
        link_(link),
        wake_(client.socket().get_executor()) {}

  net::awaitable<TunnelResult> run();

 private:
  struct Direction {
    http1::DeadlineSocket* from;
    http1::DeadlineSocket* to;
    FlatBuffer* pending;         // bytes read from `from` before the tunnel began
    obs::TunnelClose from_gone;  // the reason when reading `from` ends
    obs::TunnelClose to_gone;    // the reason when writing `to` fails
    std::uint64_t bytes = 0;
    clock::time_point write_since = clock::time_point::max();  // a write waits since then
  };

  net::awaitable<void> pump(Direction& d);
  /// Ends both directions: records the first reason and cancels whatever either side waits for.
  void stop(obs::TunnelClose reason) {
    end_because(reason);
    if (stopping_) return;
    stopping_ = true;
    up_.from->cancel();
    down_.from->cancel();
  }
  void end_because(obs::TunnelClose reason) {
    if (!reason_) reason_ = reason;
  }
  /// Writes `n` bytes to d.to; false when the write failed or the tunnel is stopping.
  net::awaitable<bool> write(Direction& d, const char* data, std::size_t n);
  clock::time_point next_deadline() const {
    auto t = last_activity_ + limits_.idle_timeout;
    for (const Direction* d : {&up_, &down_})
      if (d->write_since != clock::time_point::max())
        t = std::min(t, d->write_since + limits_.write_timeout);
    return t;
  }

  static constexpr std::size_t kChunk = 16 * 1024;
  static constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

  Direction up_;
  Direction down_;
  TunnelLimits limits_;
  TunnelLink& link_;
  net::steady_timer wake_;  // the watchdog's timer; a pump that ends cancels it
  clock::time_point last_activity_ = clock::now();
  int live_ = 2;
  bool stopping_ = false;
  std::optional<obs::TunnelClose> reason_;
};

net::awaitable<bool> TunnelRun::write(Direction& d, const char* data, std::size_t n) {
  d.write_since = clock::now();
  auto [ec, written] = co_await net::async_write(*d.to, net::buffer(data, n), kNoThrow);
  d.write_since = clock::time_point::max();
  d.bytes += written;
  if (stopping_) co_return false;
  if (ec) {
    stop(d.to_gone);
    co_return false;
  }
  last_activity_ = clock::now();
  co_return true;
}

net::awaitable<void> TunnelRun::pump(Direction& d) {
  // What the peer sent behind its head (a client's first frames sent before the 101, or an
  // upstream's first frames in the same packet as its 101) goes first, now that it may.
  if (stopping_) co_return;
  if (d.pending->size() > 0) {
    const auto data = d.pending->data();
    const bool ok = co_await write(d, static_cast<const char*>(data.data()), data.size());
    d.pending->consume(d.pending->size());
    if (!ok) co_return;
  }
  auto buf = std::make_unique<char[]>(kChunk);
  while (!stopping_) {
    auto [ec, n] = co_await d.from->async_read_some(net::buffer(buf.get(), kChunk), kNoThrow);
    if (stopping_) co_return;
    // Over TLS a peer that closes without close_notify reads as stream_truncated: a close too.
    if (ec == net::error::eof || ec == net::ssl::error::stream_truncated) {
      // A clean close of one side is a half-close for the other: it may still answer (a
      // WebSocket close frame) until it closes too, or the idle timeout ends the wait.
      end_because(d.from_gone);
      d.to->shutdown_send();
      co_return;
    }
    if (ec) {  // a reset or a failure: nothing more can be delivered either way
      stop(d.from_gone);
      co_return;
    }
    last_activity_ = clock::now();
    if (!co_await write(d, buf.get(), n)) co_return;
  }
}

net::awaitable<TunnelResult> TunnelRun::run() {
  link_.wake_ = &wake_;
  auto ex = co_await net::this_coro::executor;
  for (Direction* d : {&up_, &down_}) {
    // Each pump ends by counting itself out; the last one wakes the watchdog below, which
    // keeps this frame (and so every reference the pumps hold) alive until then.
    net::co_spawn(ex, pump(*d), [this](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          spdlog::error("tunnel pump failed: {}", x.what());
        }
        stop(obs::TunnelClose::upstream_closed);
      }
      if (--live_ == 0) wake_.cancel();
    });
  }
  while (live_ > 0) {
    if (link_.stop_requested()) stop(obs::TunnelClose::drain);
    wake_.expires_at(stopping_ ? clock::time_point::max() : next_deadline());
    co_await wake_.async_wait(kNoThrow);
    if (live_ == 0 || stopping_) continue;
    const auto now = clock::now();
    if (now >= last_activity_ + limits_.idle_timeout) {
      stop(obs::TunnelClose::idle_timeout);
    } else {
      for (const Direction* d : {&up_, &down_})
        if (d->write_since != clock::time_point::max() &&
            now >= d->write_since + limits_.write_timeout)
          stop(obs::TunnelClose::write_timeout);
    }
  }
  link_.wake_ = nullptr;
  co_return TunnelResult{up_.bytes, down_.bytes, reason_.value_or(obs::TunnelClose::client_closed)};
}

//------------------------------------------------------------------------------------------------

net::awaitable<TunnelResult> run_tunnel(http1::DeadlineSocket& client,
                                        http1::DeadlineSocket& upstream, FlatBuffer& from_client,
                                        FlatBuffer& from_upstream, TunnelLimits limits,
                                        TunnelLink& link) {
  client.disarm();
  upstream.disarm();
  TunnelRun run(client, upstream, from_client, from_upstream, limits, link);
  co_return co_await run.run();
}

}  // namespace problemgate::proxy
