#pragma once
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>

namespace problemgate::http1 {

/// A TCP socket, or a TLS stream over one, with a per-phase deadline; used for both sides of
/// the proxy.
///
/// A deadline that passes cancels the pending operation and sets timed_out(); the socket stays
/// open, so the session can still answer 408 or 504 before closing (unlike beast::tcp_stream,
/// which closes it, and whose per-operation timer bookkeeping cost more than the I/O itself).
///
/// Arming is cheap on purpose: a request moves through several phases (idle, head, body,
/// write), each with its own deadline. `arm` only records the new deadline when the timer
/// already waits for an earlier moment; that wait, when it fires, re-waits for the recorded
/// deadline instead of cancelling. The timer is re-armed only when a deadline moves earlier.
///
/// TLS: after start_tls() every read and write goes through the TLS stream (the object is an
/// AsyncReadStream and AsyncWriteStream either way); a plain socket pays one branch per call.
/// The deadline cancels the TCP socket, which cancels a TLS operation (handshake included)
/// built on it.
class DeadlineSocket {
 public:
  using clock = std::chrono::steady_clock;
  using executor_type = boost::asio::any_io_executor;
  using tls_stream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>;

  explicit DeadlineSocket(boost::asio::ip::tcp::socket socket)
      : s_(std::make_shared<State>(std::move(socket))) {}
  explicit DeadlineSocket(const boost::asio::any_io_executor& ex)
      : s_(std::make_shared<State>(boost::asio::ip::tcp::socket(ex))) {}
  ~DeadlineSocket() {
    // The outstanding wait owns the state (and so the socket) until its handler runs: cancel it
    // so that happens now, not when a long idle deadline would have passed.
    s_->deadline = clock::time_point::max();
    s_->timer.cancel();
  }
  DeadlineSocket(const DeadlineSocket&) = delete;
  DeadlineSocket& operator=(const DeadlineSocket&) = delete;

  /// The TCP socket (options, shutdown, close, peeks). Never read or write it directly once
  /// start_tls() was called: use the stream functions below.
  boost::asio::ip::tcp::socket& socket() noexcept { return s_->socket; }
  executor_type get_executor() noexcept { return s_->socket.get_executor(); }

  /// Wraps the socket in TLS with `ctx` (which must outlive this object: keep a shared_ptr to
  /// it beside). The handshake is the caller's: tls()->async_handshake(...).
  tls_stream& start_tls(boost::asio::ssl::context& ctx) {
    s_->tls = std::make_unique<tls_stream>(s_->socket, ctx);
    return *s_->tls;
  }
  bool is_tls() const noexcept { return s_->tls != nullptr; }
  /// The TLS stream, or nullptr for a plain socket.
  tls_stream* tls() noexcept { return s_->tls.get(); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    if (s_->tls) return s_->tls->async_read_some(buffers, std::forward<Token>(token));
    return s_->socket.async_read_some(buffers, std::forward<Token>(token));
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    if (s_->tls) return s_->tls->async_write_some(buffers, std::forward<Token>(token));
    return s_->socket.async_write_some(buffers, std::forward<Token>(token));
  }
  /// Half-close: no more bytes to the peer. Over TLS only the TCP side is shut (no
  /// close_notify: that would need a write racing the other direction's).
  void shutdown_send() noexcept {
    boost::system::error_code ignored;
    s_->socket.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
  }

  /// Operations pending when `d` has passed are cancelled and timed_out() turns true.
  void arm(clock::duration d) {
    State& s = *s_;
    s.timed_out = false;
    s.deadline = clock::now() + d;
    if (s.waiting && s.timer.expiry() <= s.deadline) return;  // that wait re-waits when it fires
    s.timer.expires_at(
        s.deadline);  // cancels an outstanding wait (its handler sees a new generation)
    wait(s_);
  }
  /// No deadline until the next arm(). The timer is left alone (it finds nothing to do).
  void disarm() noexcept { s_->deadline = clock::time_point::max(); }
  bool timed_out() const noexcept { return s_->timed_out; }
  /// Cancels whatever is pending now (drain of idle connections).
  void cancel() noexcept {
    boost::system::error_code ignored;
    s_->socket.cancel(ignored);
  }

 private:
  struct State {
    explicit State(boost::asio::ip::tcp::socket s)
        : socket(std::move(s)), timer(socket.get_executor()) {}
    boost::asio::ip::tcp::socket socket;
    std::unique_ptr<tls_stream> tls;  // declared after the socket it refers to: destroyed first
    boost::asio::steady_timer timer;
    clock::time_point deadline = clock::time_point::max();
    unsigned generation = 0;
    bool waiting = false;
    bool timed_out = false;
  };
  // The handler holds the state alive (the owner may be gone when a cancelled wait completes)
  // and checks the generation, so a wait replaced by a later arm() never acts.
  static void wait(const std::shared_ptr<State>& sp) {
    State& s = *sp;
    s.waiting = true;
    s.timer.async_wait([sp, gen = ++s.generation](const boost::system::error_code& ec) {
      State& st = *sp;
      if (gen != st.generation) return;
      st.waiting = false;
      if (ec) return;
      if (st.deadline == clock::time_point::max()) return;  // disarmed meanwhile
      if (clock::now() < st.deadline) {                     // moved later meanwhile
        st.timer.expires_at(st.deadline);
        wait(sp);
        return;
      }
      st.timed_out = true;
      st.deadline = clock::time_point::max();
      boost::system::error_code ignored;
      st.socket.cancel(ignored);
    });
  }

  std::shared_ptr<State> s_;
};

}  // namespace problemgate::http1
