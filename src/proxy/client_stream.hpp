#pragma once
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>

namespace problemgate::proxy {

/// The client's socket with a per-phase deadline. Unlike beast::tcp_stream, a deadline only
/// cancels the pending operation and leaves the socket open, so the session can still answer
/// 408 before closing (the slowloris defence needs an absolute head deadline, not an idle one).
class ClientStream {
public:
  explicit ClientStream(boost::asio::ip::tcp::socket socket)
      : s_(std::make_shared<State>(std::move(socket))) {}
  ~ClientStream() { disarm(); }
  ClientStream(const ClientStream&) = delete;
  ClientStream& operator=(const ClientStream&) = delete;

  boost::asio::ip::tcp::socket& socket() noexcept { return s_->socket; }

  /// Operations pending when `d` has passed are cancelled and timed_out() turns true.
  void arm(std::chrono::steady_clock::duration d) {
    s_->timed_out = false;
    ++s_->generation;
    s_->timer.expires_after(d);
    // The handler holds the state alive and checks the generation, so a timer that fired
    // just before being re-armed cannot cancel the next phase's operation.
    s_->timer.async_wait([s = s_, gen = s_->generation](const boost::system::error_code& ec) {
      if (ec || gen != s->generation) return;
      s->timed_out = true;
      boost::system::error_code ignored;
      s->socket.cancel(ignored);
    });
  }
  void disarm() noexcept {
    ++s_->generation;
    s_->timer.cancel();
  }
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
    boost::asio::steady_timer timer;
    unsigned generation = 0;
    bool timed_out = false;
  };
  std::shared_ptr<State> s_;
};

}  // namespace problemgate::proxy
