#pragma once
// Drives a hiredis async context from an Asio io_context: hiredis says when it wants to read or
// write (its ev hooks), and an async_wait on the socket tells it when it can. No thread, no
// blocking call: the worker's own event loop does the waiting.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <memory>

struct redisAsyncContext;

namespace problemgate::redis {

/// The ev hooks of one redisAsyncContext. hiredis owns the descriptor (it closes it when the
/// context is freed); the stream_descriptor only watches it and releases it at cleanup. Wait
/// handlers hold the watcher by shared_ptr and check `ac` first, so a context freed while a
/// wait is queued is never touched again.
class AsioEvents : public std::enable_shared_from_this<AsioEvents> {
 public:
  explicit AsioEvents(const boost::asio::any_io_executor& ex) : sd_(ex) {}

  /// Sets `ac`'s ev hooks to this watcher. Call right after redisAsyncConnect succeeded.
  /// Returns false (and leaves the hooks unset) if the descriptor cannot be watched.
  bool attach(redisAsyncContext* ac);

 private:
  static void add_read(void* self);
  static void del_read(void* self);
  static void add_write(void* self);
  static void del_write(void* self);
  static void cleanup(void* self);
  void arm_read();
  void arm_write();

  boost::asio::posix::stream_descriptor sd_;
  redisAsyncContext* ac_ = nullptr;  // null once hiredis cleaned up
  bool want_read_ = false, want_write_ = false;
  bool reading_ = false, writing_ = false;  // an async_wait is queued
  std::shared_ptr<AsioEvents> keep_;        // held while attached: hiredis's ev.data points here
};

}  // namespace problemgate::redis
