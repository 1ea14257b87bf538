#include "proxy/session_internal.hpp"

namespace problemgate::proxy {

std::size_t take_buffered(beast::flat_buffer& buffer, char* dst, std::size_t cap,
                          std::uint64_t& left) {
  const std::size_t got =
      std::min({static_cast<std::size_t>(std::min<std::uint64_t>(cap, left)), buffer.size()});
  if (got == 0) return 0;
  std::memcpy(dst, buffer.data().data(), got);
  buffer.consume(got);
  left -= got;
  return got;
}

net::awaitable<std::size_t> read_bounded(http1::DeadlineSocket& s, beast::flat_buffer& buffer,
                                         config::Duration timeout, char* dst, std::size_t cap,
                                         std::uint64_t& left, boost::system::error_code& ec) {
  ec = {};
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(cap, left));
  if (want == 0) co_return 0;
  if (buffer.size() > 0) co_return take_buffered(buffer, dst, want, left);
  s.arm(timeout);
  auto [rec, n] = co_await s.async_read_some(net::buffer(dst, want), kNoThrow);
  if (rec) {
    ec = rec;
    co_return 0;
  }
  left -= n;
  co_return n;
}

net::awaitable<std::size_t> Session::read_body_piece(const Runtime& rt, RequestBody& body,
                                                     char* dst, std::size_t cap, BodyError& err) {
  err = BodyError::none;
  std::size_t got = 0;
  if (body.chunks) {
    client_.arm(rt.config.limits.body_idle_timeout);
    auto& p = *body.chunks;
    p.get().body().data = dst;
    p.get().body().size = cap;
    auto [ec, n] = co_await http::async_read_some(client_, buffer_, p, kNoThrow);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      if (ec == http::error::body_limit)
        err = BodyError::too_large;
      else if (client_.timed_out())
        err = BodyError::timeout;
      else if (ec == http::error::end_of_stream || ec == net::error::eof ||
               ec == http::error::partial_message || ec == net::error::connection_reset)
        err = BodyError::client_closed;
      else
        err = BodyError::malformed;  // bad chunk framing
      co_return 0;
    }
    got = cap - p.get().body().size;
    body.done = p.is_done();
  } else {
    boost::system::error_code ec;
    got = co_await read_bounded(client_, buffer_, rt.config.limits.body_idle_timeout, dst, cap,
                                body.left, ec);
    if (ec) {
      // Closed or reset mid-body: nobody left to answer.
      err = client_.timed_out() ? BodyError::timeout : BodyError::client_closed;
      co_return 0;
    }
    body.done = body.left == 0;
  }
  ex_.bytes_in += got;
  co_return got;
}

}  // namespace problemgate::proxy
