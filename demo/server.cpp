#include "server.hpp"

#include "endpoints.hpp"

#include <problemgate/core/json_escape.hpp>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace problemgate::demo {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

// Every async op completes into (error_code, ...) instead of throwing.
constexpr auto kTok = net::as_tuple(net::use_awaitable);

// Header block cap: large enough for the proxy's forwarded headers plus test padding.
constexpr std::uint32_t kHeaderLimit = 64 * 1024;
constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

struct Stats {
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> requests{0};
};

void log_exception(std::string_view where, const std::exception_ptr& e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::cerr << "problemgate-demo-api: " << where << ": " << ex.what() << '\n';
  } catch (...) {
    std::cerr << "problemgate-demo-api: " << where << ": unknown exception\n";
  }
}

void append_uint(std::string& out, std::uint64_t v) {
  std::array<char, 24> tmp{};
  auto [end, ec] = std::to_chars(tmp.data(), tmp.data() + tmp.size(), v);
  out.append(tmp.data(), end);
}

// Scratch space for bodies we throw away. Each io_context runs on one thread, so sessions
// sharing it never write into it at the same time, and what they write is never read.
char* discard_buffer() {
  static thread_local std::array<char, kBlockBytes> buf;
  return buf.data();
}

// How a response body is delimited. HTTP/1.0 clients cannot take chunked, so what would
// be chunked is sent close-delimited to them.
enum class Framing { length, chunked, close };

//------------------------------------------------------------------------------------------

class Session {
 public:
  Session(tcp::socket socket, Stats& stats) : sock_(std::move(socket)), stats_(stats) {
    head_.reserve(1024);
    body_.reserve(1024);
  }

  net::awaitable<void> run() {
    for (;;) {
      // A fresh parser per request (Beast keeps per-message state in it); leftover bytes of
      // a pipelined next request stay in buf_.
      parser_.emplace();
      parser_->header_limit(kHeaderLimit);
      parser_->body_limit(boost::none);  // bodies stream through a fixed buffer

      auto [ec, n] = co_await http::async_read_header(sock_, buf_, *parser_, kTok);
      if (ec) {
        co_await on_read_error(ec);
        break;
      }
      stats_.requests.fetch_add(1, std::memory_order_relaxed);

      auto& req = parser_->get();
      head_only_ = req.method() == http::verb::head;
      keep_alive_ = req.keep_alive();
      http10_ = req.version() < 11;

      // curl and proxies wait for this before sending a body.
      if (!parser_->is_done() && beast::iequals(req[http::field::expect], "100-continue")) {
        if (!co_await write(net::buffer(kContinue))) break;
      }

      if (!co_await dispatch(route(req.target()))) break;
      if (!keep_alive_) break;
    }
    error_code ignored;
    sock_.shutdown(tcp::socket::shutdown_send, ignored);
  }

 private:
  // Returns false when the connection must close (I/O error or a close-delimited body).
  net::awaitable<bool> dispatch(const Route& r) {
    switch (r.kind) {
      case Kind::fixed:
        if (!co_await drain()) co_return false;
        co_return co_await send_prebuilt(*r.fixed, {});
      case Kind::nested_rate: {
        if (!co_await drain()) co_return false;
        const auto now = std::chrono::system_clock::now().time_since_epoch();
        const auto reset = std::chrono::duration_cast<std::chrono::seconds>(now).count() + 30;
        extra_.assign("X-RateLimit-Reset: ");
        append_uint(extra_, static_cast<std::uint64_t>(reset));
        extra_.append(kCrlf);
        co_return co_await send_prebuilt(*r.fixed, extra_);
      }
      case Kind::echo: co_return co_await echo();
      case Kind::big:
        if (!co_await drain()) co_return false;
        co_return co_await stream(200, "application/octet-stream", r.size, r.chunked, {},
                                  big_block(), {});
      case Kind::error_big:
        if (!co_await drain()) co_return false;
        co_return co_await stream(500, "application/json", r.size, r.chunked, kErrorBigPrefix,
                                  filler_block(), kErrorBigSuffix);
      case Kind::slow: {
        if (!co_await drain()) co_return false;
        // An async timer: other connections on this thread keep being served meanwhile.
        net::steady_timer timer(sock_.get_executor());
        timer.expires_after(std::chrono::milliseconds(r.size));
        auto [ec] = co_await timer.async_wait(kTok);
        if (ec) co_return false;
        body_.assign(R"({"ok":true,"slept_ms":)");
        append_uint(body_, r.size);
        body_.push_back('}');
        co_return co_await send_dynamic(200, "application/json");
      }
      case Kind::status:
        if (!co_await drain()) co_return false;
        body_.clear();
        if (r.status == 204 || r.status == 304) {
          // no body, no Content-Length
        } else if (r.status >= 400) {
          std::string details = "Status ";
          append_uint(details, r.status);
          details.append(" requested");
          append_flat_error(body_, reason(r.status), details);
        } else {
          body_.assign(R"({"status":)");
          append_uint(body_, r.status);
          body_.push_back('}');
        }
        co_return co_await send_dynamic(r.status, "application/json");
      case Kind::headers:
        if (!co_await drain()) co_return false;
        build_headers_echo();
        co_return co_await send_dynamic(200, "application/json");
      case Kind::stats:
        if (!co_await drain()) co_return false;
        body_.assign(R"({"connections_accepted":)");
        append_uint(body_, stats_.connections.load(std::memory_order_relaxed));
        body_.append(R"(,"requests":)");
        append_uint(body_, stats_.requests.load(std::memory_order_relaxed));
        body_.push_back('}');
        co_return co_await send_dynamic(200, "application/json");
      case Kind::not_found: {
        if (!co_await drain()) co_return false;
        std::string details = "No route for ";
        details.append(r.path);
        body_.clear();
        append_flat_error(body_, "Not found", details);
        co_return co_await send_dynamic(404, "application/json");
      }
      case Kind::bad_request:
        if (!co_await drain()) co_return false;
        body_.clear();
        append_flat_error(body_, "Bad request", r.message);
        co_return co_await send_dynamic(400, "application/json");
    }
    co_return false;
  }

  // Connection line for the response: explicit for HTTP/1.0 keep-alive and for close.
  std::string_view connection_line() const {
    if (!keep_alive_) return "Connection: close\r\n";
    if (http10_) return "Connection: keep-alive\r\n";
    return {};
  }

  net::awaitable<bool> send_prebuilt(const Prebuilt& p, std::string_view extra) {
    const std::string_view body = head_only_ ? std::string_view{} : std::string_view{p.body};
    const std::array<net::const_buffer, 5> bufs = {net::buffer(p.head), net::buffer(extra),
                                                   net::buffer(connection_line()),
                                                   net::buffer(kCrlf), net::buffer(body)};
    co_return co_await write(bufs);
  }

  void start_head(unsigned status, std::string_view content_type) {
    head_.assign("HTTP/1.1 ");
    append_uint(head_, status);
    head_.push_back(' ');
    head_.append(reason(status));
    head_.append("\r\nServer: problemgate-demo-api\r\n");
    if (!content_type.empty()) head_.append("Content-Type: ").append(content_type).append(kCrlf);
  }

  void add_framing(Framing f, std::uint64_t length) {
    switch (f) {
      case Framing::length:
        head_.append("Content-Length: ");
        append_uint(head_, length);
        head_.append(kCrlf);
        break;
      case Framing::chunked: head_.append("Transfer-Encoding: chunked\r\n"); break;
      case Framing::close: keep_alive_ = false; break;
    }
    head_.append(connection_line()).append(kCrlf);
  }

  // body_ as a whole response (no body, no Content-Length for 204 and 304).
  net::awaitable<bool> send_dynamic(unsigned status, std::string_view content_type) {
    const bool bodiless = status == 204 || status == 304;
    start_head(status, bodiless ? std::string_view{} : content_type);
    if (bodiless) {
      head_.append(connection_line()).append(kCrlf);
      co_return co_await write(net::buffer(head_));
    }
    add_framing(Framing::length, body_.size());
    const std::string_view body = head_only_ ? std::string_view{} : std::string_view{body_};
    const std::array<net::const_buffer, 2> bufs = {net::buffer(head_), net::buffer(body)};
    co_return co_await write(bufs);
  }

  Framing pick_framing(bool chunked) const {
    if (!chunked) return Framing::length;
    return http10_ ? Framing::close : Framing::chunked;
  }

  // Writes `before` verbatim, then `data` framed as one chunk when chunked, then the last
  // chunk when `last`. An empty `data` writes no chunk (a 0-size chunk would end the body).
  net::awaitable<bool> write_piece(std::string_view before, std::string_view data, Framing f,
                                   bool last) {
    std::array<char, 20> hex{};
    std::string_view size_line;
    std::string_view after;
    std::string_view terminator;
    if (f == Framing::chunked) {
      if (!data.empty()) {
        auto [end, ec] = std::to_chars(hex.data(), hex.data() + hex.size() - 2, data.size(), 16);
        *end++ = '\r';
        *end++ = '\n';
        size_line = std::string_view(hex.data(), static_cast<std::size_t>(end - hex.data()));
        after = kCrlf;
      }
      if (last) terminator = kLastChunk;
    }
    const std::array<net::const_buffer, 5> bufs = {net::buffer(before), net::buffer(size_line),
                                                   net::buffer(data), net::buffer(after),
                                                   net::buffer(terminator)};
    co_return co_await write(bufs);
  }

  // A body of `total` bytes: prefix, then `block` repeated (cut to fit), then suffix, written
  // in pieces of at most one block, so memory stays constant whatever the size.
  net::awaitable<bool> stream(unsigned status, std::string_view content_type, std::uint64_t total,
                              bool chunked, std::string_view prefix, std::string_view block,
                              std::string_view suffix) {
    const Framing f = pick_framing(chunked);
    start_head(status, content_type);
    add_framing(f, total);
    if (head_only_) co_return co_await write(net::buffer(head_));

    std::uint64_t filler = total - prefix.size() - suffix.size();  // route() checked total
    std::string_view before = head_;
    if (!co_await write_piece(before, prefix, f, false)) co_return false;
    while (filler > 0) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(filler, block.size()));
      filler -= n;
      const bool last = filler == 0 && suffix.empty();
      if (!co_await write_piece({}, block.substr(0, n), f, last)) co_return false;
    }
    if (!suffix.empty() || total == 0) {
      if (!co_await write_piece({}, suffix, f, true)) co_return false;
    }
    co_return f != Framing::close;
  }

  // POST /echo (any method): the request body comes back as it arrives, 64 KiB at a time,
  // with the request's Content-Length, or chunked when the request had none.
  net::awaitable<bool> echo() {
    auto& req = parser_->get();
    const auto length = parser_->content_length();
    const Framing f = length ? Framing::length : pick_framing(parser_->chunked());
    const auto ct = req[http::field::content_type];
    start_head(200, ct.empty() ? std::string_view{"application/octet-stream"}
                               : std::string_view{ct.data(), ct.size()});
    add_framing(f, length.value_or(0));
    if (head_only_) {
      if (!co_await write(net::buffer(head_))) co_return false;
      co_return co_await drain();
    }
    if (!echo_buf_) echo_buf_ = std::make_unique<char[]>(kBlockBytes);

    std::string_view before = head_;  // the head goes out with the first piece
    while (!parser_->is_done()) {
      auto [ok, got] = co_await read_body(echo_buf_.get());
      if (!ok) co_return false;  // the head may be out already: all we can do is close
      if (got == 0) continue;
      if (!co_await write_piece(before, {echo_buf_.get(), got}, f, false)) co_return false;
      before = {};
    }
    if (!co_await write_piece(before, {}, f, true)) co_return false;
    co_return f != Framing::close;
  }

  // Reads up to one block of body into `data`. Returns {false, 0} on error.
  net::awaitable<std::pair<bool, std::size_t>> read_body(char* data) {
    auto& body = parser_->get().body();
    body.data = data;
    body.size = kBlockBytes;
    auto [ec, n] = co_await http::async_read(sock_, buf_, *parser_, kTok);
    if (ec == http::error::need_buffer) ec = {};  // the block is full; not an error
    if (ec) co_return std::pair{false, std::size_t{0}};
    co_return std::pair{true, kBlockBytes - body.size};
  }

  // Reads and discards whatever body the request has, so the next request starts clean.
  net::awaitable<bool> drain() {
    while (!parser_->is_done()) {
      auto [ok, got] = co_await read_body(discard_buffer());
      (void)got;
      if (!ok) co_return false;
    }
    co_return true;
  }

  void build_headers_echo() {
    const auto& req = parser_->get();
    body_.assign(R"({"method":)");
    const auto method = req.method_string();
    core::append_json_string(body_, {method.data(), method.size()});
    body_.append(R"(,"target":)");
    const auto target = req.target();
    core::append_json_string(body_, {target.data(), target.size()});
    body_.append(req.version() == 10 ? R"(,"version":"HTTP/1.0")" : R"(,"version":"HTTP/1.1")");
    body_.append(R"(,"headers":[)");
    bool first = true;
    for (const auto& field : req) {
      if (!first) body_.push_back(',');
      first = false;
      const auto name = field.name_string();
      const auto value = field.value();
      body_.append(R"({"name":)");
      core::append_json_string(body_, {name.data(), name.size()});
      body_.append(R"(,"value":)");
      core::append_json_string(body_, {value.data(), value.size()});
      body_.push_back('}');
    }
    body_.append("]}");
  }

  // Between requests the peer may simply leave; a malformed request gets one flat-JSON
  // answer and the connection closes (its framing can no longer be trusted).
  net::awaitable<void> on_read_error(error_code ec) {
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) co_return;
    if (ec.category() != http::make_error_code(http::error::bad_target).category()) co_return;
    const unsigned status = ec == http::error::header_limit ? 431 : 400;
    keep_alive_ = false;
    http10_ = false;
    head_only_ = false;
    body_.clear();
    append_flat_error(body_, reason(status), ec.message());
    co_await send_dynamic(status, "application/json");
  }

  template <typename Buffers>
  net::awaitable<bool> write(const Buffers& buffers) {
    auto [ec, n] = co_await net::async_write(sock_, buffers, kTok);
    co_return !ec;
  }

  tcp::socket sock_;
  Stats& stats_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::buffer_body>> parser_;
  std::string head_;
  std::string body_;
  std::string extra_;
  std::unique_ptr<char[]> echo_buf_;
  bool head_only_ = false;
  bool keep_alive_ = true;
  bool http10_ = false;
};

net::awaitable<void> run_session(tcp::socket socket, Stats& stats) {
  Session session(std::move(socket), stats);
  co_await session.run();
}

}  // namespace

//------------------------------------------------------------------------------------------

struct Server::Impl {
  explicit Impl(const ServerOptions& o) {
    const unsigned n = o.threads == 0 ? 1 : o.threads;
    for (unsigned i = 0; i < n; ++i) {
      // Concurrency hint 1: each context is run by exactly one thread, so Asio skips locking.
      contexts.push_back(std::make_unique<net::io_context>(1));
      guards.push_back(net::make_work_guard(*contexts.back()));
    }
    auto& main = *contexts.front();
    tcp::resolver resolver(main);
    auto results = resolver.resolve(o.host, std::to_string(o.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service);
    const tcp::endpoint ep = results.begin()->endpoint();
    acceptor.emplace(main);
    acceptor->open(ep.protocol());
    acceptor->set_option(net::socket_base::reuse_address(true));
    acceptor->bind(ep);
    acceptor->listen(net::socket_base::max_listen_connections);

    signals.emplace(main, SIGINT, SIGTERM);
    signals->async_wait([this](const error_code& ec, int) {
      if (!ec) stop();
    });
  }

  void stop() {
    for (auto& c : contexts) c->stop();
  }

  net::awaitable<void> accept_loop() {
    std::size_t next = 0;
    for (;;) {
      auto& ctx = *contexts[next++ % contexts.size()];
      auto [ec, socket] = co_await acceptor->async_accept(ctx, kTok);
      if (ec == net::error::operation_aborted) co_return;
      if (ec) {
        // EMFILE and friends: back off instead of spinning on the same error.
        std::cerr << "problemgate-demo-api: accept: " << ec.message() << '\n';
        net::steady_timer t(acceptor->get_executor(), std::chrono::milliseconds(50));
        co_await t.async_wait(kTok);
        continue;
      }
      stats.connections.fetch_add(1, std::memory_order_relaxed);
      error_code ignored;
      // Header and body often go out in separate writes; Nagle would stall the second.
      socket.set_option(tcp::no_delay(true), ignored);
      net::co_spawn(ctx, run_session(std::move(socket), stats),
                    [](std::exception_ptr e) { log_exception("session", e); });
    }
  }

  Stats stats;
  std::vector<std::unique_ptr<net::io_context>> contexts;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::signal_set> signals;
};

Server::Server(const ServerOptions& options) : impl_(std::make_unique<Impl>(options)) { warm_up(); }

Server::~Server() {
  if (!impl_) return;
  // Sockets and timers go before the contexts that own their services.
  impl_->signals.reset();
  impl_->acceptor.reset();
  impl_->guards.clear();
  for (auto& c : impl_->contexts) c.reset();
}

std::string Server::local_address() const {
  const auto ep = impl_->acceptor->local_endpoint();
  const auto addr = ep.address();
  std::string out = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
  return out + ":" + std::to_string(ep.port());
}

void Server::run() {
  auto& main = *impl_->contexts.front();
  net::co_spawn(main, impl_->accept_loop(),
                [](std::exception_ptr e) { log_exception("accept loop", e); });
  std::vector<std::thread> workers;
  for (std::size_t i = 1; i < impl_->contexts.size(); ++i)
    workers.emplace_back([ctx = impl_->contexts[i].get()] { ctx->run(); });
  main.run();
  for (auto& t : workers) t.join();
}

void Server::stop() { impl_->stop(); }

}  // namespace problemgate::demo
