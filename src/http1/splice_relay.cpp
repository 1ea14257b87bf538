#include "problemgate/http1/splice_relay.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace problemgate::http1 {

namespace net = boost::asio;
using tcp = net::ip::tcp;

Pipe Pipe::open(std::size_t capacity) noexcept {
  int fds[2];
  Pipe p;
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return p;
  p.read_fd_ = fds[0];
  p.write_fd_ = fds[1];
  // A larger pipe moves a large body in fewer splices. Refused (pipe-max-size, per-user pipe
  // quota): the default size works too.
  const int got = ::fcntl(p.write_fd_, F_SETPIPE_SZ, static_cast<int>(capacity));
  p.capacity_ = got > 0
                    ? static_cast<std::size_t>(got)
                    : static_cast<std::size_t>(std::max(::fcntl(p.write_fd_, F_GETPIPE_SZ), 4096));
  return p;
}

Pipe::Pipe(Pipe&& o) noexcept
    : held(o.held), read_fd_(o.read_fd_), write_fd_(o.write_fd_), capacity_(o.capacity_) {
  o.read_fd_ = o.write_fd_ = -1;
  o.held = 0;
}

Pipe& Pipe::operator=(Pipe&& o) noexcept {
  if (this != &o) {
    close();
    read_fd_ = o.read_fd_;
    write_fd_ = o.write_fd_;
    capacity_ = o.capacity_;
    held = o.held;
    o.read_fd_ = o.write_fd_ = -1;
    o.held = 0;
  }
  return *this;
}

Pipe::~Pipe() { close(); }

void Pipe::close() noexcept {
  if (read_fd_ >= 0) ::close(read_fd_);
  if (write_fd_ >= 0) ::close(write_fd_);
  read_fd_ = write_fd_ = -1;
}

Pipe PipePool::take() noexcept {
  if (idle_.empty()) return Pipe::open(kCapacity);
  Pipe p = std::move(idle_.back());
  idle_.pop_back();
  return p;
}

void PipePool::give(Pipe p) noexcept {
  if (!p.valid() || p.held != 0 || idle_.size() >= kMaxIdle) return;  // closed by ~Pipe
  try {
    idle_.push_back(std::move(p));
  } catch (...) {}
}

namespace {

/// One non-blocking splice: bytes moved, 0 for end of stream, -1 for "would block", -2 for a
/// failure.
long splice_once(int in, int out, std::size_t len) noexcept {
  for (;;) {
    const ssize_t n = ::splice(in, nullptr, out, nullptr, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n >= 0) return static_cast<long>(n);
    if (errno == EINTR) continue;
    return errno == EAGAIN ? -1 : -2;
  }
}

}  // namespace

net::awaitable<SpliceOutcome> splice_body(DeadlineSocket& from,
                                          std::chrono::milliseconds read_timeout,
                                          DeadlineSocket& to,
                                          std::chrono::milliseconds write_timeout, Pipe& pipe,
                                          std::uint64_t& left) {
  constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);
  SpliceOutcome out;
  const int in_fd = from.socket().native_handle();
  const int out_fd = to.socket().native_handle();
  while (left > 0 || pipe.held > 0) {
    bool moved = false;
    if (left > 0 && pipe.held < pipe.capacity()) {
      const auto want =
          static_cast<std::size_t>(std::min<std::uint64_t>(left, pipe.capacity() - pipe.held));
      const long n = splice_once(in_fd, pipe.write_fd(), want);
      if (n == 0 || n == -2) {  // closed (or failed) before the announced length
        out.from_ok = false;
        break;
      }
      if (n > 0) {
        left -= static_cast<std::uint64_t>(n);
        pipe.held += static_cast<std::size_t>(n);
        moved = true;
      }
    }
    if (pipe.held > 0) {
      const long m = splice_once(pipe.read_fd(), out_fd, pipe.held);
      if (m == -2 || m == 0) {
        out.to_ok = false;
        break;
      }
      if (m > 0) {
        pipe.held -= static_cast<std::size_t>(m);
        out.bytes_out += static_cast<std::uint64_t>(m);
        moved = true;
      }
    }
    if (moved) continue;
    // Nothing moved: wait for the side that holds things up. Bytes in the pipe mean `to` is
    // full (the pipe drains first); an empty pipe means `from` has nothing yet.
    if (pipe.held > 0) {
      to.arm(write_timeout);
      auto [ec] = co_await to.socket().async_wait(tcp::socket::wait_write, kNoThrow);
      if (ec) {
        out.to_ok = false;
        break;
      }
    } else {
      from.arm(read_timeout);
      auto [ec] = co_await from.socket().async_wait(tcp::socket::wait_read, kNoThrow);
      if (ec) {
        out.from_ok = false;
        break;
      }
    }
  }
  from.disarm();
  to.disarm();
  co_return out;
}

}  // namespace problemgate::http1
