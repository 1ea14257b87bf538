#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

#include <chrono>
#include "problemgate/http1/deadline_socket.hpp"

namespace problemgate::http1 {

/// A pipe for splice(2): the kernel moves a body from one socket to the other through it, and
/// the bytes never pass through user space (no copy in, no copy out).
class Pipe {
 public:
  /// A new pipe of about `capacity` bytes (the kernel's default when it refuses the size), or
  /// an invalid one when no pipe can be made (out of descriptors): callers then copy instead.
  static Pipe open(std::size_t capacity) noexcept;

  Pipe() = default;
  Pipe(Pipe&& o) noexcept;
  Pipe& operator=(Pipe&& o) noexcept;
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe();

  bool valid() const noexcept { return read_fd_ >= 0; }
  int read_fd() const noexcept { return read_fd_; }
  int write_fd() const noexcept { return write_fd_; }
  std::size_t capacity() const noexcept { return capacity_; }
  /// Bytes spliced in and not yet out. A pipe that still holds some is never reused.
  std::size_t held = 0;

 private:
  void close() noexcept;
  int read_fd_ = -1;
  int write_fd_ = -1;
  std::size_t capacity_ = 0;
};

/// Empty pipes kept for reuse by one worker (not thread-safe, like everything a worker owns),
/// so a large response costs no pipe2/close of its own.
class PipePool {
 public:
  static constexpr std::size_t kCapacity = 256 * 1024;
  static constexpr std::size_t kMaxIdle = 16;

  Pipe take() noexcept;
  /// Keeps `p` for the next relay if it is empty and there is room; closes it otherwise.
  void give(Pipe p) noexcept;
  std::size_t idle() const noexcept { return idle_.size(); }

 private:
  std::vector<Pipe> idle_;
};

struct SpliceOutcome {
  bool from_ok = true;  ///< false: `from` closed, failed or timed out before `left` reached 0
  bool to_ok = true;    ///< false: `to` closed, failed or timed out
  std::uint64_t bytes_out = 0;
};

/// Moves exactly `left` bytes (decremented as they are taken) from `from` to `to` through
/// `pipe`; not one byte past them is read from `from`. Every wait for `from` to be readable is
/// bounded by `read_timeout`, every wait for `to` to be writable by `write_timeout`. Both
/// sockets must be non-blocking (Asio makes them so at their first asynchronous operation).
boost::asio::awaitable<SpliceOutcome> splice_body(DeadlineSocket& from,
                                                  std::chrono::milliseconds read_timeout,
                                                  DeadlineSocket& to,
                                                  std::chrono::milliseconds write_timeout,
                                                  Pipe& pipe, std::uint64_t& left);

}  // namespace problemgate::http1
