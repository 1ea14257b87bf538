#include "problemgate/upstream/cluster_manager.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <cctype>

#include "problemgate/http1/deadline_socket.hpp"
#include "problemgate/http1/tls.hpp"
#include "problemgate/upstream/pool.hpp"

namespace problemgate::upstream {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

/// One probe: GET path on a new connection, passed when the status is 2xx within `timeout`.
/// An https:// upstream is checked over TLS with its own context and name checks.
net::awaitable<bool> probe(const tcp::endpoint& address, const std::string& authority,
                           const Cluster& cluster) {
  const config::HealthCheck& hc = *cluster.settings().health_check;
  http1::DeadlineSocket s(co_await net::this_coro::executor);
  s.arm(hc.timeout);
  auto [cec] = co_await s.socket().async_connect(address, kNoThrow);
  if (cec) co_return false;
  if (const auto& ctx = cluster.tls_context()) {
    auto& ts = s.start_tls(*ctx);
    http1::prepare_client(ts, tls_server_name(cluster.settings(), authority),
                          cluster.settings().tls.verify);
    auto [hec] = co_await ts.async_handshake(net::ssl::stream_base::client, kNoThrow);
    if (hec) co_return false;
  }
  const std::string request =
      "GET " + hc.path + " HTTP/1.1\r\nHost: " + authority +
      "\r\nUser-Agent: problemgate-health-check\r\nConnection: close\r\n\r\n";
  auto [wec, wn] = co_await net::async_write(s, net::buffer(request), kNoThrow);
  if (wec) co_return false;
  std::string head;
  char buf[512];
  while (head.find("\r\n") == std::string::npos && head.size() < 4096) {
    auto [rec, n] = co_await s.async_read_some(net::buffer(buf), kNoThrow);
    head.append(buf, n);
    if (rec) break;
  }
  boost::system::error_code ignored;
  s.socket().close(ignored);
  // "HTTP/1.x NNN ..."
  if (head.size() < 12 || head.compare(0, 7, "HTTP/1.") != 0 || head[8] != ' ') co_return false;
  co_return head[9] == '2' && std::isdigit(static_cast<unsigned char>(head[10])) &&
      std::isdigit(static_cast<unsigned char>(head[11]));
}

net::awaitable<void> check_endpoint(std::shared_ptr<Cluster> cluster,
                                    std::shared_ptr<EndpointState> ep) {
  const bool passed = co_await probe(ep->address, ep->authority, *cluster);
  cluster->record_check(*ep, passed);
}

void log_failure(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("health check failed: {}", ex.what());
  }
}

net::awaitable<void> check_loop(std::weak_ptr<Cluster> weak) {
  net::steady_timer timer(co_await net::this_coro::executor);
  for (;;) {
    auto cluster = weak.lock();
    if (!cluster) co_return;
    const auto interval = cluster->settings().health_check->interval;
    for (const auto& ep : *cluster->endpoints()) {
      net::co_spawn(timer.get_executor(), check_endpoint(cluster, ep), log_failure);
    }
    cluster.reset();  // a reload may drop it while we wait
    timer.expires_after(interval);
    co_await timer.async_wait(kNoThrow);
  }
}

}  // namespace

ClusterManager::ClusterManager()
    : resolver_([this] { resolve_loop(); }), checker_([this] { checks_.run(); }) {}

ClusterManager::~ClusterManager() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  checks_.stop();
  resolver_.join();
  checker_.join();
}

void ClusterManager::watch(const std::shared_ptr<Cluster>& cluster) {
  const auto& s = cluster->settings();
  if (s.health_check) net::co_spawn(checks_, check_loop(cluster), log_failure);
  if (cluster->has_names() && s.resolve.count() > 0) {
    {
      std::lock_guard lock(mutex_);
      resolving_.push_back({cluster, std::chrono::steady_clock::now() + s.resolve});
    }
    wake_.notify_all();
  }
}

void ClusterManager::resolve_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    auto next = now + std::chrono::hours(1);
    for (std::size_t i = 0; i < resolving_.size();) {
      auto cluster = resolving_[i].cluster.lock();
      if (!cluster) {
        resolving_.erase(resolving_.begin() + static_cast<std::ptrdiff_t>(i));
        continue;
      }
      if (resolving_[i].due <= now) {
        resolving_[i].due = now + cluster->settings().resolve;
        // The lookup may block for seconds: not under the lock (watch() must not wait for it).
        lock.unlock();
        cluster->refresh();
        lock.lock();
        if (stopping_) return;
      }
      next = std::min(next, resolving_[i].due);
      ++i;
    }
    wake_.wait_until(lock, next);
  }
}

}  // namespace problemgate::upstream
