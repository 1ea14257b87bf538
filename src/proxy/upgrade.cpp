#include "proxy/session_internal.hpp"

namespace problemgate::proxy {

net::awaitable<Session::Outcome> Session::open_tunnel(const Runtime& rt, const http1::HeadView& res,
                                                      const http1::HeadScan& rscan,
                                                      std::unique_ptr<upstream::Connection> conn,
                                                      upstream::UpstreamPool& pool) {
  const auto& cfg = rt.config;
  auto& rc = snapshot_->route_counters(ex_.route);
  auto& uc = snapshot_->upstream_counters(ex_.route->upstream_index);
  build_switching_head(rt, res, rscan);
  // What follows the 101 in the upstream's buffer is already the new protocol: it stays in
  // conn->buffer and is the first thing the tunnel sends to the client.
  conn->buffer.consume(rscan.head_bytes);
  client_.arm(cfg.limits.write_timeout);
  auto [ec, n] = co_await net::async_write(client_, net::buffer(down_head_), kNoThrow);
  client_.disarm();
  ex_.bytes_out += n;
  if (ec) {
    pool.discard(std::move(conn));
    ex_.error = "client_closed";
    co_return Outcome::close;
  }
  ex_.upgrade = "websocket";
  ex_.tunnel_started = steady::now();
  obs::bump(rc.tunnels_opened);
  obs::bump(rc.tunnels_open);

  // The client and upstream connections stay counted (limits.max_connections, the pool's
  // max_connections) for as long as the tunnel runs: the session and this frame hold both.
  TunnelLink link;
  worker_.add_tunnel(link);
  const TunnelResult r = co_await run_tunnel(
      client_, conn->stream, buffer_, conn->buffer,
      TunnelLimits{cfg.limits.tunnel_idle_timeout, cfg.limits.write_timeout}, link);
  link.unlink();
  // A connection that was a tunnel speaks another protocol now: never back to the pool.
  pool.discard(std::move(conn));
  uc.open.store(pool.open_count(), std::memory_order_relaxed);
  uc.idle.store(pool.idle_count(), std::memory_order_relaxed);
  rc.tunnels_open.store(rc.tunnels_open.load(std::memory_order_relaxed) - 1,
                        std::memory_order_relaxed);
  obs::bump(rc.tunnels_closed[static_cast<std::size_t>(r.reason)]);
  ex_.tunnel_bytes_up = r.bytes_up;
  ex_.tunnel_bytes_down = r.bytes_down;
  ex_.tunnel_close = obs::tunnel_close_name(r.reason);
  co_return Outcome::close;
}

}  // namespace problemgate::proxy
