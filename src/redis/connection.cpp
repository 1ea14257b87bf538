#include "redis/connection.hpp"

#include <boost/asio/post.hpp>
#include <hiredis/async.h>

#include <algorithm>

namespace problemgate::redis {

namespace net = boost::asio;

namespace {

obs::StoreConnState gauge_of(Connection::State s) {
  switch (s) {
    case Connection::State::connecting: return obs::StoreConnState::connecting;
    case Connection::State::ready: return obs::StoreConnState::connected;
    default: return obs::StoreConnState::disconnected;
  }
}

}  // namespace

struct Connection::Op {
  enum class Kind { auth, select, script_load, check } kind;
  Connection* conn;
  steady::time_point sent;
  steady::time_point deadline;
  Handler handler;    // check only
  bool done = false;  // its handler ran (a timeout completes it before the reply comes)
};

Connection::Connection(const net::any_io_executor& ex, ConnectionEvents& owner,
                       obs::StoreCounters& counters, std::chrono::milliseconds timeout)
    : ex_(ex), owner_(owner), counters_(counters), timeout_(timeout), timer_(ex) {
  counters_.move(std::nullopt, gauge_of(state_));
}

Connection::~Connection() {
  close();
  counters_.move(gauge_of(state_), std::nullopt);
}

void Connection::set_state(State s) {
  if (s == state_) return;
  counters_.move(gauge_of(state_), gauge_of(s));
  state_ = s;
}

void Connection::open(const std::string& ip, std::uint16_t port, const Handshake& hs) {
  close();
  failing_ = false;
  ++generation_;
  // An IP literal: hiredis's getaddrinfo returns at once, and connect() does not wait.
  redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), port);
  if (ac == nullptr || ac->err != 0) {
    std::string why = ac ? std::string("connect: ") + ac->errstr : "connect: out of memory";
    if (ac) redisAsyncFree(ac);
    fail_later(std::move(why), false);
    return;
  }
  events_ = std::make_shared<AsioEvents>(ex_);
  if (!events_->attach(ac)) {
    redisAsyncFree(ac);
    fail_later("cannot watch the connection's descriptor", false);
    return;
  }
  ac_ = ac;
  ac_->data = this;
  // Setting the connect callback asks for the first writable event, which completes the connect.
  redisAsyncSetConnectCallback(ac_, &Connection::on_connect);
  redisAsyncSetDisconnectCallback(ac_, &Connection::on_disconnect);
  set_state(State::connecting);
  // The handshake is pipelined behind the connect: hiredis buffers it until the socket is up.
  const auto now = steady::now();
  const auto deadline = now + timeout_;
  if (!hs.password.empty()) {
    std::vector<std::string_view> argv{"AUTH"};
    if (!hs.username.empty()) argv.push_back(hs.username);
    argv.push_back(hs.password);
    if (!send(new Op{Op::Kind::auth, this, now, deadline, {}}, argv)) return;
  }
  if (hs.db != 0) {
    const std::string db = std::to_string(hs.db);
    if (!send(new Op{Op::Kind::select, this, now, deadline, {}}, {"SELECT", db})) return;
  }
  load_script();
}

void Connection::load_script() {
  if (ac_ == nullptr || failing_) return;
  const auto now = steady::now();
  send(new Op{Op::Kind::script_load, this, now, now + timeout_, {}},
       {"SCRIPT", "LOAD", kGcraScript});
}

void Connection::close(bool timed_out) {
  timer_.cancel();
  if (ac_ != nullptr) {
    redisAsyncContext* ac = ac_;
    closing_timeout_ = timed_out;
    // Runs every pending callback with no reply (they complete), then the disconnect callback.
    ac->onDisconnect = nullptr;
    redisAsyncFree(ac);
    ac_ = nullptr;
    closing_timeout_ = false;
  }
  pending_.clear();  // all freed by their callbacks above
  set_state(State::closed);
}

bool Connection::send(Op* op, const std::vector<std::string_view>& argv) {
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (auto a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  if (ac_ == nullptr ||
      redisAsyncCommandArgv(ac_, &Connection::on_reply, op, static_cast<int>(argv.size()),
                            ptrs.data(), lens.data()) != REDIS_OK) {
    if (op->kind == Op::Kind::check)
      complete(*op,
               Outcome{false, GcraReply{GcraReply::Kind::error, false, 0, 0, {}, "not connected"}});
    delete op;
    return false;
  }
  pending_.push_back(op);
  arm_timer();
  return true;
}

void Connection::send_check(const std::vector<std::string_view>& argv, steady::time_point deadline,
                            Handler handler) {
  Op* op = new Op{Op::Kind::check, this, steady::now(), deadline, std::move(handler)};
  if (state_ == State::closed || failing_) {
    complete(*op,
             Outcome{false, GcraReply{GcraReply::Kind::error, false, 0, 0, {}, "not connected"}});
    delete op;
    return;
  }
  send(op, argv);
}

void Connection::complete(Op& op, Outcome out) {
  op.done = true;
  // Posted, not called: the session resumes outside hiredis's callback, so whatever it does
  // next (another check, a reload dropping this connection) cannot re-enter the context.
  net::post(ex_, [h = std::move(op.handler), out = std::move(out)]() mutable {
    std::move(h)(std::move(out));
  });
}

void Connection::arm_timer() {
  if (timer_armed_ || pending_.empty()) return;
  timer_armed_ = true;
  // One timer per connection, at the oldest command's deadline: deadlines grow in send order
  // (one timeout for all), so the oldest is always the first to pass.
  timer_.expires_at(pending_.front()->deadline);
  timer_.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
    auto self = w.lock();
    if (!self) return;
    self->timer_armed_ = false;
    if (ec || self->pending_.empty()) return;
    if (self->pending_.front()->deadline <= steady::now()) {
      // Redis stalled: everything queued behind is late too. Dropping the connection stops the
      // pipeline from growing; the owner backs off instead of paying the timeout again.
      if (self->failing_) return;
      self->failing_ = true;
      self->close(true);
      self->owner_.on_failed("no reply within the timeout", true);
      return;
    }
    self->arm_timer();
  });
}

void Connection::fail_later(std::string reason, bool timed_out) {
  if (failing_) return;
  failing_ = true;
  net::post(ex_, [w = weak_from_this(), gen = generation_, reason = std::move(reason), timed_out] {
    auto self = w.lock();
    if (!self || self->generation_ != gen) return;
    self->close(timed_out);
    self->owner_.on_failed(reason, timed_out);
  });
}

void Connection::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Connection*>(ac->data);
  if (status == REDIS_OK) return;  // ready once the handshake's last reply is in
  // hiredis frees the context itself after this callback (pending commands get no reply).
  self->ac_ = nullptr;
  self->set_state(State::closed);
  self->fail_later(std::string("connect: ") + (ac->errstr ? ac->errstr : "failed"), false);
}

void Connection::on_disconnect(const redisAsyncContext* ac, int) {
  // Only for a close we did not ask for (close() unsets the callback): the server went away.
  auto* self = static_cast<Connection*>(ac->data);
  self->ac_ = nullptr;
  self->set_state(State::closed);
  self->fail_later(ac->err != 0 && ac->errstr ? std::string("connection lost: ") + ac->errstr
                                              : std::string("connection closed by the server"),
                   false);
}

void Connection::on_reply(redisAsyncContext*, void* r, void* privdata) {
  std::unique_ptr<Op> op(static_cast<Op*>(privdata));
  Connection* self = op->conn;
  const auto* reply = static_cast<const redisReply*>(r);
  auto& q = self->pending_;
  if (!q.empty() && q.front() == op.get())
    q.pop_front();
  else if (auto it = std::find(q.begin(), q.end(), op.get()); it != q.end())
    q.erase(it);

  switch (op->kind) {
    case Op::Kind::check: {
      if (op->done) break;
      Outcome out;
      if (reply == nullptr && self->closing_timeout_) {
        out.timed_out = true;
      } else {
        if (reply)
          self->counters_.round_trip.observe(
              std::chrono::duration<double>(steady::now() - op->sent).count());
        out.reply = parse_gcra_reply(reply);
      }
      self->complete(*op, std::move(out));
      break;
    }
    case Op::Kind::auth:
    case Op::Kind::select:
      if (reply != nullptr && reply->type == REDIS_REPLY_ERROR)
        self->fail_later(
            std::string(op->kind == Op::Kind::auth ? "AUTH" : "SELECT") +
                " refused: " + std::string(reply->str, std::min<std::size_t>(reply->len, 200)),
            false);
      break;
    case Op::Kind::script_load:
      if (reply == nullptr) break;
      if (reply->type == REDIS_REPLY_STRING) {
        self->counters_.script_loads.fetch_add(1, std::memory_order_relaxed);
        if (self->state_ == State::connecting) {
          self->set_state(State::ready);
          self->owner_.on_ready(std::string_view(reply->str, reply->len));
        }
      } else {
        self->fail_later(reply->type == REDIS_REPLY_ERROR
                             ? "SCRIPT LOAD refused: " +
                                   std::string(reply->str, std::min<std::size_t>(reply->len, 200))
                             : std::string("SCRIPT LOAD: unexpected reply"),
                         false);
      }
      break;
  }
  // The oldest command changed: watch the new one's deadline.
  if (!self->timer_armed_ && !q.empty() && self->ac_ != nullptr) self->arm_timer();
}

}  // namespace problemgate::redis
