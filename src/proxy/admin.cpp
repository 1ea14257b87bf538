#include "proxy/admin.hpp"
#include "proxy/listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
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

BearerCheck check_bearer(std::string_view authorization, std::string_view token) noexcept {
  if (token.empty()) return BearerCheck::ok;
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  while (!authorization.empty() && is_space(authorization.front())) authorization.remove_prefix(1);
  while (!authorization.empty() && is_space(authorization.back())) authorization.remove_suffix(1);
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() || !is_space(authorization[kScheme.size()])) {
    return BearerCheck::missing;
  }
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    const char c = authorization[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c) != kScheme[i])
      return BearerCheck::missing;
  }
  std::string_view given = authorization.substr(kScheme.size());
  while (!given.empty() && is_space(given.front())) given.remove_prefix(1);
  // Constant time in the token's length: every byte of it is compared whatever the guess is,
  // and no branch depends on a secret byte.
  unsigned diff = given.size() == token.size() ? 0U : 1U;
  for (std::size_t i = 0; i < token.size(); ++i) {
    const auto g = static_cast<unsigned char>(i < given.size() ? given[i] : 0);
    diff |= static_cast<unsigned>(g ^ static_cast<unsigned char>(token[i]));
  }
  return diff == 0 ? BearerCheck::ok : BearerCheck::wrong;
}

namespace {

constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);
constexpr std::string_view kRealm = R"(Bearer realm="problemgate-admin")";

struct Scope {
  const AdminHooks& hooks;
  std::string_view token;  // "" = no token required
  bool controls;           // /config and /reload served here
};

http::response<http::string_body> reply(http::status status, std::string_view type,
                                        std::string body, unsigned version, bool keep_alive) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

/// GET /config, POST /reload: authorized, answered and logged with the peer's address.
http::response<http::string_body> control(const http::request<http::string_body>& req,
                                          std::string_view path, const Scope& scope,
                                          const std::string& peer) {
  const unsigned v = req.version();
  const bool ka = req.keep_alive();
  const std::string_view method = req.method_string();
  if (const auto auth = check_bearer(req[http::field::authorization], scope.token);
      auth != BearerCheck::ok) {
    const bool missing = auth == BearerCheck::missing;
    spdlog::warn("admin: {} {} from {}: 401, {} bearer token", method, path, peer,
                 missing ? "no" : "wrong");
    auto res = reply(http::status::unauthorized, "text/plain",
                     "unauthorized: send Authorization: Bearer <token>\n", v, ka);
    res.set(http::field::www_authenticate,
            missing ? std::string(kRealm) : std::string(kRealm) + R"(, error="invalid_token")");
    return res;
  }
  if (path == "/config" && (req.method() == http::verb::get || req.method() == http::verb::head)) {
    spdlog::info("admin: {} /config from {}: 200", method, peer);
    return reply(http::status::ok, "application/json", scope.hooks.config_json(), v, ka);
  }
  if (path == "/reload" && req.method() == http::verb::post) {
    const std::string errors = scope.hooks.reload();
    if (errors.empty()) {
      spdlog::info("admin: POST /reload from {}: 200, config reloaded", peer);
      return reply(http::status::ok, "text/plain", "reloaded\n", v, ka);
    }
    spdlog::info("admin: POST /reload from {}: 422, rejected, old config kept", peer);
    return reply(http::status::unprocessable_entity, "text/plain", errors, v, ka);
  }
  spdlog::info("admin: {} {} from {}: 405", method, path, peer);
  auto res = reply(http::status::method_not_allowed, "text/plain", "method not allowed\n", v, ka);
  res.set(http::field::allow, path == "/reload" ? "POST" : "GET, HEAD");
  return res;
}

net::awaitable<void> serve(tcp::socket socket, Scope scope) {
  boost::system::error_code peer_ec;
  const auto remote = socket.remote_endpoint(peer_ec);
  const std::string peer = peer_ec ? std::string("unknown peer") : endpoint_text(remote);
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
      const bool ready = scope.hooks.ready();
      res = reply(ready ? http::status::ok : http::status::service_unavailable, "text/plain",
                  ready ? "ready\n" : "draining\n", req.version(), ka);
    } else if (path == "/metrics" && get) {
      res = reply(http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                  scope.hooks.metrics(), req.version(), ka);
    } else if (path == "/healthz" || path == "/readyz" || path == "/metrics") {
      res = reply(http::status::method_not_allowed, "text/plain", "method not allowed\n",
                  req.version(), ka);
      res.set(http::field::allow, "GET, HEAD");
    } else if (scope.controls && (path == "/config" || path == "/reload")) {
      res = control(req, path, scope, peer);
    } else {
      res =
          reply(http::status::not_found, "text/plain",
                scope.controls ? "not found: try /healthz /readyz /metrics /config, POST /reload\n"
                               : "not found: try /healthz /readyz /metrics\n",
                req.version(), ka);
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

void log_failure(const char* what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("{}: {}", what, ex.what());
  } catch (...) {
    spdlog::error("{}: unknown exception", what);
  }
}

net::awaitable<void> accept_loop(tcp::acceptor& acceptor, Scope scope) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec) {
      if (!acceptor.is_open()) co_return;
      continue;
    }
    net::co_spawn(acceptor.get_executor(), serve(std::move(socket), scope),
                  [](std::exception_ptr e) { log_failure("admin connection failed", e); });
  }
}

}  // namespace

AdminServer::AdminServer(const std::vector<AdminListener>& listeners, std::string token,
                         AdminHooks hooks)
    : token_(std::move(token)), hooks_(std::move(hooks)) {
  listeners_.reserve(listeners.size());
  for (const auto& l : listeners) {
    const auto addr = listen_address(ioc_, l.endpoint.host, l.endpoint.port);
    auto acceptor = open_listener(ioc_, tcp::endpoint(addr, l.endpoint.port), ListenerKind::single);
    std::string bound = endpoint_text(acceptor.local_endpoint());
    listeners_.push_back(Listener{std::move(acceptor), l.controls, std::move(bound)});
  }
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
  for (auto& l : listeners_) {
    net::co_spawn(ioc_, accept_loop(l.acceptor, Scope{hooks_, token_, l.controls}),
                  [](std::exception_ptr e) { log_failure("admin accept loop failed", e); });
  }
  thread_ = std::thread([this] { ioc_.run(); });
}

void AdminServer::stop() {
  if (!thread_.joinable()) return;
  net::post(ioc_, [this] {
    boost::system::error_code ignored;
    for (auto& l : listeners_) l.acceptor.close(ignored);
    ioc_.stop();
  });
  thread_.join();
}

}  // namespace problemgate::proxy
