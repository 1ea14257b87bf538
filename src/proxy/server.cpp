#include "problemgate/proxy/server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <functional>
#include <thread>

#include "problemgate/obs/access_log.hpp"
#include "proxy/runtime.hpp"
#include "proxy/worker.hpp"

namespace problemgate::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Server::Impl {
  explicit Impl(config::Config cfg)
      : access_log(true), shared{clock, access_log, {}},
        runtime(std::make_shared<const Runtime>(std::move(cfg), clock)) {
    const unsigned n = runtime->config.worker_threads();
    for (unsigned i = 0; i < n; ++i) workers.push_back(std::make_unique<Worker>(i, shared, runtime));
  }

  core::SystemClock clock;
  obs::AccessLog access_log;
  Shared shared;
  std::shared_ptr<const Runtime> runtime;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::string> bound;
  net::io_context signals_ctx{1};
  net::signal_set signals{signals_ctx, SIGINT, SIGTERM};
  net::signal_set hup{signals_ctx, SIGHUP};
  std::function<void()> reload_hook;
  std::atomic<bool> stopping{false};

  void wait_hup() {
    hup.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (reload_hook) reload_hook();
      wait_hup();
    });
  }
};

Server::Server(config::Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Server::~Server() = default;

void Server::start(std::ostream& out) {
  const auto& cfg = impl_->runtime->config;
  for (const auto& listen : cfg.listen) {
    net::ip::address addr;
    boost::system::error_code ec;
    addr = net::ip::make_address(listen.host, ec);
    if (ec) {
      tcp::resolver resolver(impl_->workers[0]->context());
      auto results = resolver.resolve(listen.host, std::to_string(listen.port));
      addr = results.begin()->endpoint().address();
    }
    std::uint16_t port = listen.port;
    for (auto& worker : impl_->workers) {
      tcp::acceptor acceptor(worker->context());
      const tcp::endpoint ep(addr, port);
      acceptor.open(ep.protocol());
      acceptor.set_option(tcp::acceptor::reuse_address(true));
      // Every worker binds the same port; the kernel spreads connections across them.
      using reuse_port = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
      acceptor.set_option(reuse_port(true));
      acceptor.bind(ep);
      acceptor.listen(net::socket_base::max_listen_connections);
      port = acceptor.local_endpoint().port();
      worker->add_acceptor(std::move(acceptor));
    }
    const std::string shown = (addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) +
                              ":" + std::to_string(port);
    impl_->bound.push_back(shown);
    out << "listening on " << shown << std::endl;
  }
}

int Server::run() {
  auto& im = *impl_;
  for (auto& w : im.workers) w->start();
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
  spdlog::info("stopped");
  return 0;
}

void Server::shutdown() {
  auto& im = *impl_;
  if (im.stopping.exchange(true)) return;
  const auto deadline = im.runtime->config.limits.drain_timeout;
  for (auto& w : im.workers) {
    net::post(w->context(), [w = w.get(), deadline] { w->begin_drain(deadline); });
  }
}

void Server::reload(config::Config config) {
  auto rt = std::make_shared<const Runtime>(std::move(config), impl_->clock);
  impl_->runtime = rt;
  for (auto& w : impl_->workers) {
    net::post(w->context(), [w = w.get(), rt] { w->set_runtime(rt); });
  }
}

void Server::on_reload_signal(std::function<void()> hook) { impl_->reload_hook = std::move(hook); }

std::vector<std::string> Server::bound_addresses() const { return impl_->bound; }

}  // namespace problemgate::proxy
