#include "proxy/admin.hpp"
#include "proxy/listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

namespace problemgate::proxy {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

http::response<http::string_body> reply(http::status status, std::string_view type, std::string body,
                                        unsigned version, bool keep_alive) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

net::awaitable<void> serve(tcp::socket socket, const AdminHooks& hooks) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer(16 * 1024);
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(8 * 1024);
    parser.body_limit(64 * 1024);
    stream.expires_after(std::chrono::seconds(10));
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kNoThrow);
    if (ec) co_return;
    auto& req = parser.get();
    const std::string_view target = req.target();
    const std::string_view path = target.substr(0, target.find('?'));
    const bool ka = req.keep_alive();
    http::response<http::string_body> res;
    const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
    if (path == "/healthz" && get) {
      res = reply(http::status::ok, "text/plain", "ok\n", req.version(), ka);
    } else if (path == "/readyz" && get) {
      const bool ready = hooks.ready();
      res = reply(ready ? http::status::ok : http::status::service_unavailable, "text/plain",
                  ready ? "ready\n" : "draining\n", req.version(), ka);
    } else if (path == "/metrics" && get) {
      res = reply(http::status::ok, "text/plain; version=0.0.4; charset=utf-8", hooks.metrics(),
                  req.version(), ka);
    } else if (path == "/config" && get) {
      res = reply(http::status::ok, "application/json", hooks.config_json(), req.version(), ka);
    } else if (path == "/reload" && req.method() == http::verb::post) {
      const std::string errors = hooks.reload();
      res = errors.empty()
                ? reply(http::status::ok, "text/plain", "reloaded\n", req.version(), ka)
                : reply(http::status::unprocessable_entity, "text/plain", errors, req.version(), ka);
    } else if (path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/config" ||
               path == "/reload") {
      res = reply(http::status::method_not_allowed, "text/plain", "method not allowed\n", req.version(), ka);
      res.set(http::field::allow, path == "/reload" ? "POST" : "GET, HEAD");
    } else {
      res = reply(http::status::not_found, "text/plain",
                  "not found: try /healthz /readyz /metrics /config, POST /reload\n", req.version(), ka);
    }
    if (req.method() == http::verb::head) {
      const auto len = res.body().size();
      res.body().clear();
      res.content_length(len);
    }
    auto [wec, wn] = co_await http::async_write(stream, res, kNoThrow);
    if (wec || !ka) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

net::awaitable<void> accept_loop(tcp::acceptor& acceptor, const AdminHooks& hooks) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec) {
      if (!acceptor.is_open()) co_return;
      continue;
    }
    net::co_spawn(acceptor.get_executor(), serve(std::move(socket), hooks), [](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::warn("admin connection: {}", ex.what());
        }
      }
    });
  }
}

}  // namespace

AdminServer::AdminServer(const config::Endpoint& listen, AdminHooks hooks) : hooks_(std::move(hooks)) {
  const auto addr = listen_address(ioc_, listen.host, listen.port);
  acceptor_ = open_listener(ioc_, tcp::endpoint(addr, listen.port), ListenerKind::single);
  bound_ = endpoint_text(acceptor_.local_endpoint());
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
  net::co_spawn(ioc_, accept_loop(acceptor_, hooks_), net::detached);
  thread_ = std::thread([this] { ioc_.run(); });
}

void AdminServer::stop() {
  if (!thread_.joinable()) return;
  net::post(ioc_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    ioc_.stop();
  });
  thread_.join();
}

}  // namespace problemgate::proxy
