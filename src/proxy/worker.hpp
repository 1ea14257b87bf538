#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "problemgate/core/clock.hpp"
#include "problemgate/core/request_id.hpp"
#include "problemgate/obs/access_log.hpp"
#include "problemgate/obs/metrics.hpp"
#include "problemgate/problem/normalize.hpp"
#include "problemgate/upstream/pool.hpp"
#include "proxy/client_stream.hpp"
#include "proxy/runtime.hpp"
#include "problemgate/http1/splice_relay.hpp"
#include "proxy/tunnel.hpp"
#include "proxy/worker_snapshot.hpp"

namespace problemgate::proxy {

/// A client connection waiting for its next request. It is linked into its worker's idle list
/// so a drain can close it; linking and unlinking allocate nothing, as they happen on every
/// request, and a session that ends while idle unlinks itself.
struct IdleClient
    : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
  explicit IdleClient(ClientStream& s) : stream(s) {}
  ClientStream& stream;
};

/// What a session needs to know of the listener that accepted it. Lives as long as the Worker.
struct ListenerInfo {
  std::string host;        ///< as configured (Runtime::tls_for finds its TLS settings by it)
  std::uint16_t port = 0;  ///< the bound port
  std::string label;       ///< "127.0.0.1:8443": the metrics' listener label
  bool tls = false;        ///< fixed for the process's life (a reload cannot change it)
  std::size_t index = 0;   ///< its place in the start-up config's `listen`
};

/// State shared by all workers of one Server. Everything here is thread-safe.
struct Shared {
  const core::Clock& clock;
  obs::AccessLog& access_log;
  obs::Metrics& metrics;
  std::atomic<std::uint32_t> connections{0};
  redis::StoreHealth store_health;
};

/// One thread's world: its io_context, acceptors, upstream pools, id generator, normalizer and
/// scratch buffers. Nothing in a Worker is touched from another thread except through post(),
/// so the request path takes no locks (thread-per-core, SO_REUSEPORT).
class Worker {
 public:
  Worker(unsigned index, Shared& shared, std::shared_ptr<const Runtime> runtime);

  boost::asio::io_context& context() noexcept { return ioc_; }
  unsigned index() const noexcept { return index_; }
  Shared& shared() noexcept { return shared_; }
  /// The current snapshot: a request copies it and holds it until it is done.
  const std::shared_ptr<const WorkerSnapshot>& snapshot() const noexcept { return snapshot_; }
  /// Swaps the snapshot (from the worker's own thread). In-flight requests keep the one they
  /// started with; pools of upstreams whose name and address survive are kept.
  void set_runtime(std::shared_ptr<const Runtime> rt);

  obs::WorkerMetrics& metrics() noexcept { return metrics_; }
  core::RequestIdGenerator& ids() noexcept { return ids_; }
  problem::Normalizer& normalizer() noexcept { return normalizer_; }
  std::string& log_scratch() noexcept { return log_scratch_; }
  /// Relay buffers are recycled per worker: a forward borrows one and gives it back, so the
  /// request path does not allocate 64 KiB per request and idle connections hold none.
  std::unique_ptr<char[]> take_relay_buffer(std::size_t size) {
    if (relay_free_.empty()) return std::make_unique<char[]>(size);
    auto b = std::move(relay_free_.back());
    relay_free_.pop_back();
    return b;
  }
  void give_relay_buffer(std::unique_ptr<char[]> b) {
    if (b && relay_free_.size() < kMaxFreeRelayBuffers) relay_free_.push_back(std::move(b));
  }
  static constexpr std::size_t kMaxFreeRelayBuffers = 64;
  /// Pipes for splicing large bodies socket to socket, recycled like relay buffers.
  http1::PipePool& pipes() noexcept { return pipes_; }

  void add_acceptor(boost::asio::ip::tcp::acceptor acceptor, ListenerInfo info);
  /// Starts the accept loops.
  void start();
  /// Stops accepting, closes idle client connections and idle upstream connections, and lets
  /// in-flight requests finish; after `deadline` everything still open is stopped.
  /// With `accept_for` > 0, new connections are still accepted (and served with Connection:
  /// close) that long before the listeners close.
  void begin_drain(std::chrono::milliseconds deadline,
                   std::chrono::milliseconds accept_for = std::chrono::milliseconds(0));
  bool draining() const noexcept { return draining_; }
  /// How long an idle keep-alive connection still waits for a request once a drain began: a
  /// client that sent its next request just as the drain started is served, not cut off.
  static constexpr std::chrono::milliseconds kDrainIdleGrace{250};

  // Session bookkeeping for drain.
  void session_started() noexcept { ++sessions_; }
  void session_ended();
  void mark_idle(IdleClient& c) {
    if (!c.is_linked()) idle_.push_back(c);
  }
  static void mark_busy(IdleClient& c) noexcept { c.unlink(); }
  /// A tunnel that is running: a drain ends it when limits.drain_timeout has passed (a
  /// WebSocket has no response whose end a drain could wait for).
  void add_tunnel(TunnelLink& t) {
    if (!t.is_linked()) tunnels_.push_back(t);
    if (drain_deadline_passed_) t.request_stop();
  }

 private:
  boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor,
                                           const ListenerInfo& info);
  void schedule_sweep();
  void stop_accepting();
  void close_idle_clients();
  void release_store();
  void arm_drain_deadline(std::chrono::milliseconds deadline);

  // One thread runs this context; other threads only post() to it (reload, drain), which keeps
  // the scheduler locked. Sockets and timers are touched by the owning thread only, so the
  // reactor needs no per-descriptor locks.
  boost::asio::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  unsigned index_;
  Shared& shared_;
  obs::WorkerMetrics& metrics_;
  std::shared_ptr<const WorkerSnapshot> snapshot_;
  core::RequestIdGenerator ids_;
  problem::Normalizer normalizer_;
  std::string log_scratch_;
  std::vector<std::unique_ptr<char[]>> relay_free_;
  http1::PipePool pipes_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  std::vector<std::unique_ptr<ListenerInfo>> listeners_;  // one per acceptor, same order
  boost::intrusive::list<IdleClient, boost::intrusive::constant_time_size<false>> idle_;
  boost::intrusive::list<TunnelLink, boost::intrusive::constant_time_size<false>> tunnels_;
  bool drain_deadline_passed_ = false;
  std::size_t sessions_ = 0;
  bool draining_ = false;
  bool accepting_ = true;
  boost::asio::steady_timer drain_timer_{ioc_};
  boost::asio::steady_timer accept_timer_{ioc_};
  boost::asio::steady_timer sweep_timer_{ioc_};
};

}  // namespace problemgate::proxy
