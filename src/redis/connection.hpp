#pragma once
// One connection to Redis: a hiredis async context on the worker's event loop, with the
// handshake (AUTH, SELECT, SCRIPT LOAD) pipelined right behind the non-blocking connect and a
// deadline on every command. Private to the redis module.
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "problemgate/obs/metrics.hpp"
#include "problemgate/redis/gcra_script.hpp"
#include "redis/asio_events.hpp"

struct redisAsyncContext;

namespace problemgate::redis {

using steady = std::chrono::steady_clock;

/// How one command ended: `timed_out`, or `reply` (kind error with a message when the
/// connection closed before the reply came).
struct Outcome {
  bool timed_out = false;
  GcraReply reply;
};

/// What a connection tells its owner. Called from the worker's thread, never from inside a
/// hiredis callback that could still touch the context.
class ConnectionEvents {
 public:
  virtual void on_ready(std::string_view script_sha) = 0;
  /// The connection failed and closed; its pending commands completed (timeout or error).
  virtual void on_failed(std::string_view reason, bool timed_out) = 0;

 protected:
  ~ConnectionEvents() = default;
};

struct Handshake {
  std::string username, password;
  std::uint32_t db = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class State { closed, connecting, ready };
  using Handler = boost::asio::any_completion_handler<void(Outcome)>;

  Connection(const boost::asio::any_io_executor& ex, ConnectionEvents& owner,
             obs::StoreCounters& counters, std::chrono::milliseconds timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Starts a non-blocking connect to `ip` (a literal: no name lookup here) and queues the
  /// handshake. Failure is reported through on_failed, posted.
  void open(const std::string& ip, std::uint16_t port, const Handshake& hs);
  /// Frees the context now: pending commands complete with an error, or a timeout when
  /// `timed_out`. No on_failed.
  void close(bool timed_out = false);

  State state() const noexcept { return state_; }
  std::size_t pending() const noexcept { return pending_.size(); }

  /// Queues SCRIPT LOAD of the limiter script (after a NOSCRIPT: the script cache was flushed).
  void load_script();

  /// Sends one command (argv) and completes with its reply, or a timeout at `deadline`.
  template <class Token>
  auto async_command(std::vector<std::string_view> argv, steady::time_point deadline,
                     Token&& token) {
    return boost::asio::async_initiate<Token, void(Outcome)>(
        [this, argv = std::move(argv), deadline](auto handler) mutable {
          send_check(argv, deadline, Handler(std::move(handler)));
        },
        token);
  }

 private:
  struct Op;
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);

  void send_check(const std::vector<std::string_view>& argv, steady::time_point deadline,
                  Handler handler);
  bool send(Op* op, const std::vector<std::string_view>& argv);
  void complete(Op& op, Outcome out);
  void arm_timer();
  /// Reports a failure to the owner after the current hiredis callback returned.
  void fail_later(std::string reason, bool timed_out);
  void set_state(State s);

  boost::asio::any_io_executor ex_;
  ConnectionEvents& owner_;
  obs::StoreCounters& counters_;
  std::chrono::milliseconds timeout_;
  redisAsyncContext* ac_ = nullptr;
  std::shared_ptr<AsioEvents> events_;
  State state_ = State::closed;
  bool failing_ = false;  // a failure is being reported: send nothing more
  std::uint64_t generation_ =
      0;  // bumped by open(): a failure posted for an older context is stale
  bool closing_timeout_ = false;  // close() in progress after a stall: pending ops time out
  std::deque<Op*> pending_;       // in send order: Redis answers in order
  boost::asio::steady_timer timer_;
  bool timer_armed_ = false;
};

}  // namespace problemgate::redis
