#include "problemgate/upstream/pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/socket.h>

#include <cerrno>

#include "problemgate/http1/tls.hpp"

namespace problemgate::upstream {

namespace net = boost::asio;
using tcp = net::ip::tcp;
constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

namespace {

/// True when the peer has not closed an idle connection (a peek that would block). Upstreams
/// close idle keep-alive connections on their own schedule; catching that here avoids sending
/// a request into a dead socket (the retry in the forwarder covers the remaining race).
bool still_open(Connection& c) {
  if (c.buffer.size() != 0) return false;
  // Over TLS, bytes already decrypted and waiting are stray bytes too. A close_notify or any
  // record that arrived while idle shows in the peek below like plain bytes: not reused.
  if (auto* tls = c.stream.tls(); tls && SSL_pending(tls->native_handle()) > 0) return false;
  char byte;
  const auto fd = c.stream.socket().native_handle();
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
  return false;  // unsolicited bytes: the connection is out of sync
}

}  // namespace

std::string tls_server_name(const config::Upstream& upstream, std::string_view authority) {
  if (!upstream.tls.server_name.empty()) return upstream.tls.server_name;
  // The configured host of the target an address came from ("name:443", "[::1]:443").
  std::string_view a = authority;
  if (!a.empty() && a.front() == '[')
    a = a.substr(1, a.find(']') - 1);
  else if (const auto colon = a.rfind(':'); colon != std::string_view::npos)
    a = a.substr(0, colon);
  return a.empty() ? upstream.host : std::string(a);
}

UpstreamPool::UpstreamPool(net::any_io_executor ex, config::Upstream upstream)
    : ex_(std::move(ex)), upstream_(std::move(upstream)) {}

UpstreamPool::UpstreamPool(net::any_io_executor ex, config::Upstream upstream,
                           std::shared_ptr<EndpointState> endpoint,
                           std::shared_ptr<net::ssl::context> tls)
    : ex_(std::move(ex)),
      upstream_(std::move(upstream)),
      endpoint_(std::move(endpoint)),
      tls_(std::move(tls)) {
  endpoints_.push_back(endpoint_->address);
  if (tls_) {
    server_name_ = tls_server_name(upstream_, endpoint_->authority);
  }
}

UpstreamPool::~UpstreamPool() = default;

std::unique_ptr<Connection> UpstreamPool::take_idle(bool retryable) {
  const auto now = std::chrono::steady_clock::now();
  while (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    const auto idle_for = now - conn->idle_since;
    // A connection that received bytes while idle (a late body after HEAD/204/304, a second
    // response) or was closed is never reused: the stray bytes would otherwise be read as the
    // next request's response. Finding out costs a system call (a peek), one in five of a
    // proxied request's. By default every reuse pays it. An operator may set
    // `reuse_check_after` to skip it for a request the forwarder can retry (no body,
    // idempotent) on a connection idle for less than that. Such a request finds a close by
    // trying, and is retried on a new connection. Stray bytes still fail the response scan
    // (a 502), unless they form a whole response (an upstream answering twice). The check is
    // never skipped for a request that cannot be retried, or after HEAD/204/304.
    const bool check =
        !retryable || conn->check_on_reuse || idle_for >= upstream_.reuse_check_after;
    if (idle_for > upstream_.idle_timeout || (check && !still_open(*conn))) {
      discard(std::move(conn));
      continue;
    }
    ++reuses_;
    return conn;
  }
  return nullptr;
}

net::awaitable<Acquired> UpstreamPool::connect() {
  if (open_ >= upstream_.max_connections)
    co_return Acquired{nullptr, AcquireError::exhausted, false};
  ++open_;
  auto conn = std::make_unique<Connection>(ex_);
  if (endpoints_.empty()) {
    tcp::resolver resolver(ex_);
    auto [ec, results] =
        co_await resolver.async_resolve(upstream_.host, std::to_string(upstream_.port), kNoThrow);
    if (ec || results.empty()) {
      --open_;
      co_return Acquired{nullptr, AcquireError::refused, false};
    }
    for (const auto& r : results) endpoints_.push_back(r.endpoint());
  }
  conn->stream.arm(upstream_.connect_timeout);
  auto [ec, ep] = co_await net::async_connect(conn->stream.socket(), endpoints_, kNoThrow);
  conn->stream.disarm();
  if (ec) {
    --open_;
    const bool timed_out = conn->stream.timed_out();
    co_return Acquired{nullptr, timed_out ? AcquireError::timeout : AcquireError::refused, false};
  }
  boost::system::error_code ignored;
  conn->stream.socket().set_option(tcp::no_delay(true), ignored);
  if (tls_) {
    // The handshake counts against connect_timeout too (the arm above is re-armed for it):
    // the connection is not usable before it is done.
    conn->tls_ctx = tls_;
    auto& ts = conn->stream.start_tls(*tls_);
    http1::prepare_client(ts, server_name_, upstream_.tls.verify);
    if (session_) SSL_set_session(ts.native_handle(), session_.get());
    conn->stream.arm(upstream_.connect_timeout);
    auto [hec] = co_await ts.async_handshake(net::ssl::stream_base::client, kNoThrow);
    conn->stream.disarm();
    if (hec) {
      --open_;
      if (conn->stream.timed_out()) co_return Acquired{nullptr, AcquireError::timeout, false};
      co_return Acquired{nullptr,
                         http1::is_certificate_error(hec) ? AcquireError::tls_certificate
                                                          : AcquireError::tls_protocol,
                         false};
    }
    if (SSL_session_reused(ts.native_handle())) ++tls_resumed_;
  }
  ++connects_;
  co_return Acquired{std::move(conn), AcquireError::none, false};
}

void UpstreamPool::release(std::unique_ptr<Connection> conn) {
  if (!conn) return;
  // A retired pool keeps nothing; extra bytes after a complete response: out of sync.
  if (retired_ || conn->buffer.size() != 0) {
    discard(std::move(conn));
    return;
  }
  conn->stream.disarm();
  keep_session(*conn);
  conn->idle_since = std::chrono::steady_clock::now();
  idle_.push_back(std::move(conn));
}

void UpstreamPool::keep_session(Connection& conn) {
  auto* tls = conn.stream.tls();
  if (!tls) return;
  // The newest resumable session, for the next connection's handshake. TLS 1.3 tickets arrive
  // after the handshake, so this is looked at when a connection is given back or dropped
  // (after a response), not right after connecting.
  SSL* s = tls->native_handle();
  if (SSL_get0_session(s) == session_.get()) return;
  SSL_SESSION* sess = SSL_get1_session(s);
  if (sess && SSL_SESSION_is_resumable(sess))
    session_.reset(sess, SSL_SESSION_free);
  else if (sess)
    SSL_SESSION_free(sess);
}

void UpstreamPool::discard(std::unique_ptr<Connection> conn) {
  if (!conn) return;
  keep_session(*conn);
  // Closing without a close_notify would make OpenSSL mark the session (ours too: it is the
  // same object) not resumable when the SSL is freed. The connection is given up on purpose,
  // not cut, so it is closed as if the shutdown had been exchanged.
  if (auto* tls = conn->stream.tls())
    SSL_set_shutdown(tls->native_handle(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  boost::system::error_code ignored;
  conn->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  conn->stream.socket().close(ignored);
  if (open_ > 0) --open_;
}

void UpstreamPool::sweep() {
  const auto now = std::chrono::steady_clock::now();
  std::size_t kept = 0;
  for (auto& conn : idle_) {
    if (now - conn->idle_since > upstream_.idle_timeout || !still_open(*conn)) {
      discard(std::move(conn));
    } else {
      idle_[kept++] = std::move(conn);
    }
  }
  idle_.resize(kept);
}

void UpstreamPool::close_idle() {
  while (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    discard(std::move(conn));
  }
}

}  // namespace problemgate::upstream
