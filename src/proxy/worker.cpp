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
    : index_(index),
      shared_(shared),
      metrics_(shared.metrics.worker(index)),
      snapshot_(WorkerSnapshot::make(std::move(runtime), nullptr, ioc_.get_executor(), metrics_,
                                     shared.store_health)),
      ids_(shared.clock) {}

void Worker::set_runtime(std::shared_ptr<const Runtime> rt) {
  snapshot_ = WorkerSnapshot::make(std::move(rt), snapshot_.get(), ioc_.get_executor(), metrics_,
                                   shared_.store_health);
}

void Worker::add_acceptor(tcp::acceptor acceptor, ListenerInfo info) {
  acceptors_.push_back(std::make_unique<tcp::acceptor>(std::move(acceptor)));
  listeners_.push_back(std::make_unique<ListenerInfo>(std::move(info)));
}

void Worker::schedule_sweep() {
  // Idle upstream connections are checked once a second: expired or peer-closed ones are
  // closed even when no request comes to reuse them.
  sweep_timer_.expires_after(std::chrono::seconds(1));
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || draining_) return;
    for (const auto& b : snapshot_->balancers()) b->sweep();
    schedule_sweep();
  });
}

void Worker::start() {
  schedule_sweep();
  for (std::size_t i = 0; i < acceptors_.size(); ++i) {
    net::co_spawn(ioc_, accept_loop(*acceptors_[i], *listeners_[i]), [](std::exception_ptr e) {
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

net::awaitable<void> Worker::accept_loop(tcp::acceptor& acceptor, const ListenerInfo& info) {
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
    const auto limit = snapshot_->runtime().config.limits.max_connections;
    if (shared_.connections.fetch_add(1, std::memory_order_relaxed) >= limit) {
      // Over the connection cap: close at once (cheaper for everyone than queueing).
      shared_.connections.fetch_sub(1, std::memory_order_relaxed);
      shared_.metrics.connections_rejected.fetch_add(1, std::memory_order_relaxed);
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    session_started();
    net::co_spawn(ioc_, run_session(*this, std::move(socket), info), [this](std::exception_ptr e) {
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
    for (const auto& b : snapshot_->balancers()) b->close_idle();
    release_store();
  }
}

void Worker::release_store() {
  // The store's connections wait on their sockets forever; once no session can need them,
  // they go, so the worker's loop runs out of work and the drain ends.
  if (draining_ && !accepting_ && sessions_ == 0 && snapshot_->store())
    snapshot_->store()->shutdown();
}

void Worker::begin_drain(std::chrono::milliseconds deadline, std::chrono::milliseconds accept_for) {
  if (draining_) return;
  draining_ = true;
  sweep_timer_.cancel();
  // Idle keep-alive connections close within kDrainIdleGrace (a request that raced the drain is
  // still served, with Connection: close); busy ones close after their response.
  close_idle_clients();
  for (const auto& b : snapshot_->balancers()) b->close_idle();
  if (accept_for.count() > 0) {
    // drain.accept_for: new connections are still served (one request each, Connection:
    // close) while /readyz says 503, until the load balancer has noticed.
    accept_timer_.expires_after(accept_for);
    accept_timer_.async_wait([this, deadline](const boost::system::error_code& ec) {
      if (ec) return;
      stop_accepting();
      close_idle_clients();
      arm_drain_deadline(deadline);
    });
    return;
  }
  stop_accepting();
  arm_drain_deadline(deadline);
}

void Worker::close_idle_clients() {
  for (auto& c : idle_) c.stream.arm(kDrainIdleGrace);  // moves the idle deadline earlier
}

void Worker::stop_accepting() {
  accepting_ = false;
  for (auto& a : acceptors_) {
    boost::system::error_code ignored;
    a->close(ignored);
  }
}

void Worker::arm_drain_deadline(std::chrono::milliseconds deadline) {
  if (sessions_ == 0) {
    release_store();
    return;
  }
  drain_timer_.expires_after(deadline);
  drain_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    spdlog::warn("worker {}: drain deadline passed with {} connections open", index_, sessions_);
    drain_deadline_passed_ = true;
    if (tunnels_.empty()) {
      ioc_.stop();
      return;
    }
    // Tunnels are ended, not dropped: each closes both sockets and writes its access-log line
    // and metrics. Whatever is still open after a short grace is stopped as before.
    std::size_t n = 0;
    for (auto& t : tunnels_) {
      t.request_stop();
      ++n;
    }
    spdlog::info("worker {}: closing {} tunnels at the drain deadline", index_, n);
    drain_timer_.expires_after(kDrainIdleGrace);
    drain_timer_.async_wait([this](const boost::system::error_code& e) {
      if (!e) ioc_.stop();
    });
  });
}

}  // namespace problemgate::proxy
