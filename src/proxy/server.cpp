#include "problemgate/proxy/server.hpp"

#include <chrono>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <algorithm>
#include <charconv>
#include <functional>
#include <mutex>
#include <thread>

#include "problemgate/config/dump.hpp"
#include "problemgate/config/load.hpp"
#include "problemgate/obs/access_log.hpp"
#include "problemgate/obs/metrics.hpp"
#include "proxy/admin.hpp"
#include "proxy/listener.hpp"
#include "proxy/cluster_metrics.hpp"
#include "proxy/runtime.hpp"
#include "proxy/worker.hpp"

namespace problemgate::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Server::Impl {
  explicit Impl(config::Config cfg)
      : access_log(true, 1, cfg.limits.access_log_buffer_bytes),
        threads(cfg.worker_threads()),
        metrics(threads),
        shared{clock, access_log, metrics, {}, {}},
        runtime(std::make_shared<const Runtime>(std::move(cfg), clock, limiter_key, nullptr,
                                                &clusters, hosts_file)) {
    running_addresses.listen = runtime->config.listen;
    running_addresses.threads = threads;
    running_addresses.admin = runtime->config.admin;
    for (unsigned i = 0; i < threads; ++i)
      workers.push_back(std::make_unique<Worker>(i, shared, runtime));
    mark_reload_success();
  }

  void mark_reload_success() {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::system_clock::now().time_since_epoch());
    metrics.last_reload_success_s.store(now.count());
    metrics.last_reload_ok.store(true);
  }

  core::SystemClock clock;
  // Drawn once: every reload's limiters hash client keys alike (see Runtime).
  const ratelimit::HashKey limiter_key = draw_limiter_key();
  obs::AccessLog access_log;
  // PROBLEMGATE_HOSTS_FILE: a hosts(5) file read before the system resolver for upstream
  // names (tests and air-gapped setups; see README "Upstreams"). Read once at start-up.
  const std::string hosts_file = [] {
    const char* v = std::getenv("PROBLEMGATE_HOSTS_FILE");
    return std::string(v ? v : "");
  }();
  // Re-resolves upstream names and runs health checks, off the workers.
  upstream::ClusterManager clusters;
  unsigned threads;
  obs::Metrics metrics;
  Shared shared;
  std::mutex runtime_mutex;  // guards `runtime` (reloads come from the signal and admin threads)
  std::unique_ptr<AdminServer> admin;
  std::function<config::Config()> loader;
  std::atomic<bool> started{false};
  std::shared_ptr<const Runtime> runtime;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::string> bound;
  // What runs, for a reload to compare with: the configured hosts with the ports bound.
  config::Config running_addresses;
  net::io_context signals_ctx{1};
  net::signal_set signals{signals_ctx, SIGINT, SIGTERM};
  net::signal_set hup{signals_ctx, SIGHUP};
  std::atomic<bool> stopping{false};
  Server* self = nullptr;

  void wait_hup() {
    hup.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      const std::string errors = self->reload_now();
      if (errors.empty())
        spdlog::info("SIGHUP: config reloaded");
      else if (!loader)
        spdlog::warn("SIGHUP: no config file to reload (started from flags); ignored");
      wait_hup();
    });
  }
};

Server::Server(config::Config config) : impl_(std::make_unique<Impl>(std::move(config))) {
  impl_->self = this;
}
Server::~Server() {
  if (impl_->admin) impl_->admin->stop();
}

void Server::start(std::ostream& out) {
  const auto& cfg = impl_->runtime->config;
  for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
    const auto& listen = cfg.listen[i];
    const auto addr = listen_address(impl_->workers[0]->context(), listen.host, listen.port);
    std::uint16_t port = listen.port;
    bool first = true;
    for (auto& worker : impl_->workers) {
      // Every worker listens on the same port; the kernel spreads connections across them.
      auto acceptor =
          open_listener(worker->context(), tcp::endpoint(addr, port),
                        first ? ListenerKind::first_of_group : ListenerKind::member_of_group);
      first = false;
      port = acceptor.local_endpoint().port();
      worker->add_acceptor(std::move(acceptor),
                           ListenerInfo{listen.host, port, endpoint_text(tcp::endpoint(addr, port)),
                                        listen.tls.has_value(), i});
    }
    const std::string shown = endpoint_text(tcp::endpoint(addr, port));
    impl_->bound.push_back(shown);
    impl_->running_addresses.listen[i].port = port;
    // One write per line: stderr is unbuffered and shared with the diagnostics logger.
    out << ("listening on " + shown + (listen.tls ? " (tls)" : "") + "\n") << std::flush;
  }
  std::vector<AdminListener> admin_listeners;
  if (cfg.admin.listen) admin_listeners.push_back({*cfg.admin.listen, true});
  if (cfg.admin.probes_listen) admin_listeners.push_back({*cfg.admin.probes_listen, false});
  if (!admin_listeners.empty()) {
    auto& im = *impl_;
    AdminHooks hooks;
    hooks.ready = [&im] {
      if (!im.started.load() || im.stopping.load()) return false;
      // A shared rate-limit store that cannot be reached makes the gateway unready only when
      // it refuses limited requests then (on_error: deny); with allow it still serves.
      if (!im.shared.store_health.degraded()) return true;
      std::lock_guard lock(im.runtime_mutex);
      const auto& store = im.runtime->config.rate_limit_store;
      return store.type != config::RateLimitStore::Type::redis ||
             store.on_error == config::RateLimitStore::OnError::allow;
    };
    hooks.metrics = [&im] {
      std::string text = im.metrics.render(im.shared.connections.load(std::memory_order_relaxed),
                                           im.access_log.dropped_lines());
      std::shared_ptr<const Runtime> rt;
      {
        std::lock_guard lock(im.runtime_mutex);
        rt = im.runtime;
      }
      render_cluster_metrics(*rt, text);
      return text;
    };
    hooks.config_json = [&im] {
      std::lock_guard lock(im.runtime_mutex);
      return config::dump_json(im.runtime->config);
    };
    hooks.reload = [this] { return reload_now(); };
    // The token is the one read at start-up: like the admin addresses, a reload doesn't change it
    // (config::restart_only_changes refuses a reload that tries).
    im.admin = std::make_unique<AdminServer>(admin_listeners, cfg.admin.token, std::move(hooks));
    for (std::size_t i = 0; i < admin_listeners.size(); ++i) {
      const std::string& shown = im.admin->bound(i);  // "HOST:PORT"
      const auto colon = shown.rfind(':');
      std::uint16_t bound_port = 0;
      if (colon != std::string::npos)
        std::from_chars(shown.data() + colon + 1, shown.data() + shown.size(), bound_port);
      auto& running = admin_listeners[i].controls ? im.running_addresses.admin.listen
                                                  : im.running_addresses.admin.probes_listen;
      if (running) running->port = bound_port;
      out << (std::string(admin_listeners[i].controls ? "admin" : "probes") + " listening on " +
              shown + "\n")
          << std::flush;
    }
  }
}

int Server::run() {
  auto& im = *impl_;
  for (auto& w : im.workers) w->start();
  if (im.admin) im.admin->start();
  im.started = true;
  std::vector<std::thread> threads;
  threads.reserve(im.workers.size());
  for (auto& w : im.workers) {
    threads.emplace_back([&ctx = w->context()] {
      for (;;) {
        try {
          ctx.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("worker loop: {}", e.what());
        }
      }
    });
  }
  im.signals.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: draining", sig);
    shutdown();
  });
  im.wait_hup();
  // The signal context runs on this thread until a drain finished every worker.
  std::thread waiter([&] {
    for (auto& t : threads) t.join();
    net::post(im.signals_ctx, [&] {
      boost::system::error_code ignored;
      im.signals.cancel(ignored);
      im.hup.cancel(ignored);
    });
  });
  im.signals_ctx.run();
  waiter.join();
  if (im.admin) im.admin->stop();
  spdlog::info("stopped");
  return 0;
}

void Server::shutdown() {
  auto& im = *impl_;
  if (im.stopping.exchange(true)) return;
  std::chrono::milliseconds deadline;
  std::chrono::milliseconds accept_for;
  {
    std::lock_guard lock(im.runtime_mutex);
    deadline = im.runtime->config.limits.drain_timeout;
    accept_for = im.runtime->config.drain.accept_for;
  }
  for (auto& w : im.workers) {
    net::post(w->context(),
              [w = w.get(), deadline, accept_for] { w->begin_drain(deadline, accept_for); });
  }
}

void Server::reload(config::Config config) {
  auto& im = *impl_;
  std::lock_guard lock(im.runtime_mutex);
  // Refused whole rather than applied in part: the file and what runs never disagree silently.
  if (auto problems = config::restart_only_changes(im.running_addresses, config);
      !problems.empty()) {
    throw config::ConfigError(std::move(problems));
  }
  im.access_log.set_queue_bytes(config.limits.access_log_buffer_bytes);
  auto rt = std::make_shared<const Runtime>(std::move(config), im.clock, im.limiter_key,
                                            im.runtime.get(), &im.clusters, im.hosts_file);
  im.runtime = rt;
  for (auto& w : im.workers) {
    net::post(w->context(), [w = w.get(), rt] { w->set_runtime(rt); });
  }
}

void Server::set_config_loader(std::function<config::Config()> loader) {
  impl_->loader = std::move(loader);
}

std::string Server::reload_now() {
  auto& im = *impl_;
  if (!im.loader) {
    im.metrics.reloads_failed.fetch_add(1);
    im.metrics.last_reload_ok.store(false);
    return "no config file to reload (started from flags)\n";
  }
  try {
    reload(im.loader());
    im.metrics.reloads_ok.fetch_add(1);
    im.mark_reload_success();
    return {};
  } catch (const config::ConfigError& e) {
    std::string all;
    for (const auto& p : e.problems()) {
      spdlog::error("reload rejected, old config kept: {}", p);
      all += p;
      all += '\n';
    }
    im.metrics.reloads_failed.fetch_add(1);
    im.metrics.last_reload_ok.store(false);
    return all;
  } catch (const std::exception& e) {
    spdlog::error("reload rejected, old config kept: {}", e.what());
    im.metrics.reloads_failed.fetch_add(1);
    im.metrics.last_reload_ok.store(false);
    return std::string(e.what()) + "\n";
  }
}

std::vector<std::string> Server::bound_addresses() const { return impl_->bound; }

void Server::set_build_info(std::string_view version, std::string_view commit) {
  impl_->metrics.build_version = std::string(version);
  impl_->metrics.build_commit = std::string(commit);
}

}  // namespace problemgate::proxy
