#include "proxy/worker.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "proxy/client_stream.hpp"
#include "proxy/session.hpp"

namespace problemgate::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

Worker::Worker(unsigned index, Shared& shared, std::shared_ptr<const Runtime> runtime)
    : index_(index), shared_(shared), runtime_(std::move(runtime)),
      metrics_(shared.metrics.worker(index)), ids_(shared.clock) {
  no_route_counters_ = &metrics_.route("");
}

obs::RouteCounters& Worker::route_counters(const Runtime& rt, const config::Route* route) {
  if (counters_runtime_ != &rt) {
    route_counters_.clear();
    upstream_counters_.clear();
    for (const auto& r : rt.config.routes) route_counters_.push_back(&metrics_.route(r.name));
    for (const auto& u : rt.config.upstreams) upstream_counters_.push_back(&metrics_.upstream(u.name));
    counters_runtime_ = &rt;
  }
  return route ? *route_counters_[rt.route_index(route)] : *no_route_counters_;
}

obs::UpstreamCounters& Worker::upstream_counters(const Runtime& rt, std::size_t upstream_index) {
  (void)route_counters(rt, nullptr);  // refreshes the caches for this snapshot
  return *upstream_counters_[upstream_index];
}

void Worker::set_runtime(std::shared_ptr<const Runtime> rt) {
  runtime_ = std::move(rt);
}

upstream::UpstreamPool& Worker::pool(const Runtime& rt, std::size_t upstream_index) {
  if (pools_runtime_ != &rt) {
    // A new snapshot: map its upstreams onto pools by name, keeping live connections of the
    // upstreams that are still there (settings refreshed).
    pools_.clear();
    for (const auto& up : rt.config.upstreams) {
      auto& slot = pools_by_name_[up.name];
      if (!slot) {
        slot = std::make_unique<upstream::UpstreamPool>(ioc_.get_executor(), up);
      } else if (slot->settings().host != up.host || slot->settings().port != up.port) {
        slot->close_idle();
        slot = std::make_unique<upstream::UpstreamPool>(ioc_.get_executor(), up);
      } else {
        slot->update(up);
      }
      pools_.push_back(slot.get());
    }
    pools_runtime_ = &rt;
  }
  return *pools_[upstream_index];
}

void Worker::add_acceptor(tcp::acceptor acceptor) {
  acceptors_.push_back(std::make_unique<tcp::acceptor>(std::move(acceptor)));
}

void Worker::schedule_sweep() {
  // Idle upstream connections are checked once a second: expired or peer-closed ones are
  // closed even when no request comes to reuse them.
  sweep_timer_.expires_after(std::chrono::seconds(1));
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || draining_) return;
    for (auto& [name, pool] : pools_by_name_) pool->sweep();
    schedule_sweep();
  });
}

void Worker::start() {
  schedule_sweep();
  for (auto& a : acceptors_) {
    net::co_spawn(ioc_, accept_loop(*a), [](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::error("accept loop failed: {}", ex.what());
        }
      }
    });
  }
}

net::awaitable<void> Worker::accept_loop(tcp::acceptor& acceptor) {
  constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
      // EMFILE and friends: keep serving existing connections and try again shortly.
      spdlog::warn("accept failed: {}", ec.message());
      net::steady_timer t(ioc_, std::chrono::milliseconds(50));
      co_await t.async_wait(kNoThrow);
      continue;
    }
    const auto limit = runtime_->config.limits.max_connections;
    if (shared_.connections.fetch_add(1, std::memory_order_relaxed) >= limit) {
      // Over the connection cap: close at once (cheaper for everyone than queueing).
      shared_.connections.fetch_sub(1, std::memory_order_relaxed);
      shared_.metrics.connections_rejected.fetch_add(1, std::memory_order_relaxed);
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    session_started();
    net::co_spawn(ioc_, run_session(*this, std::move(socket)), [this](std::exception_ptr e) {
      shared_.connections.fetch_sub(1, std::memory_order_relaxed);
      session_ended();
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::error("session failed: {}", ex.what());
        }
      }
    });
  }
}

void Worker::session_ended() {
  --sessions_;
  if (draining_ && sessions_ == 0) {
    drain_timer_.cancel();
    for (auto& [name, pool] : pools_by_name_) pool->close_idle();
  }
}

void Worker::begin_drain(std::chrono::milliseconds deadline) {
  if (draining_) return;
  draining_ = true;
  sweep_timer_.cancel();
  for (auto& a : acceptors_) {
    boost::system::error_code ignored;
    a->close(ignored);
  }
  for (auto& c : idle_) c.stream.cancel();
  for (auto& [name, pool] : pools_by_name_) pool->close_idle();
  if (sessions_ == 0) return;
  drain_timer_.expires_after(deadline);
  drain_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) {
      spdlog::warn("worker {}: drain deadline passed with {} connections open", index_, sessions_);
      ioc_.stop();
    }
  });
}

}  // namespace problemgate::proxy
