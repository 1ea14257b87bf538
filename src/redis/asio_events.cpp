#include "redis/asio_events.hpp"

#include <hiredis/async.h>

namespace problemgate::redis {

bool AsioEvents::attach(redisAsyncContext* ac) {
  boost::system::error_code ec;
  sd_.assign(ac->c.fd, ec);
  if (ec) return false;
  ac_ = ac;
  keep_ = shared_from_this();
  ac->ev.data = this;
  ac->ev.addRead = &AsioEvents::add_read;
  ac->ev.delRead = &AsioEvents::del_read;
  ac->ev.addWrite = &AsioEvents::add_write;
  ac->ev.delWrite = &AsioEvents::del_write;
  ac->ev.cleanup = &AsioEvents::cleanup;
  return true;
}

void AsioEvents::add_read(void* self) {
  auto* e = static_cast<AsioEvents*>(self);
  e->want_read_ = true;
  e->arm_read();
}

void AsioEvents::del_read(void* self) { static_cast<AsioEvents*>(self)->want_read_ = false; }

void AsioEvents::add_write(void* self) {
  auto* e = static_cast<AsioEvents*>(self);
  e->want_write_ = true;
  e->arm_write();
}

void AsioEvents::del_write(void* self) { static_cast<AsioEvents*>(self)->want_write_ = false; }

void AsioEvents::cleanup(void* self) {
  auto* e = static_cast<AsioEvents*>(self);
  e->ac_ = nullptr;
  e->want_read_ = e->want_write_ = false;
  // hiredis closes the descriptor right after this: stop watching it first (queued waits
  // complete with operation_aborted and see ac_ == null).
  (void)e->sd_.release();
  // Queued waits hold their own reference; this drops hiredis's.
  auto keep = std::move(e->keep_);
}

void AsioEvents::arm_read() {
  // A wait already queued serves a read wanted again after a delRead.
  if (reading_ || ac_ == nullptr) return;
  reading_ = true;
  sd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                 [self = shared_from_this()](const boost::system::error_code& ec) {
                   self->reading_ = false;
                   if (ec || self->ac_ == nullptr || !self->want_read_) return;
                   // May free the context (peer closed): cleanup then nulls ac_.
                   redisAsyncHandleRead(self->ac_);
                   if (self->ac_ != nullptr && self->want_read_) self->arm_read();
                 });
}

void AsioEvents::arm_write() {
  if (writing_ || ac_ == nullptr) return;
  writing_ = true;
  sd_.async_wait(boost::asio::posix::stream_descriptor::wait_write,
                 [self = shared_from_this()](const boost::system::error_code& ec) {
                   self->writing_ = false;
                   if (ec || self->ac_ == nullptr || !self->want_write_) return;
                   // The first writable event also completes a non-blocking connect.
                   redisAsyncHandleWrite(self->ac_);
                   if (self->ac_ != nullptr && self->want_write_) self->arm_write();
                 });
}

}  // namespace problemgate::redis
