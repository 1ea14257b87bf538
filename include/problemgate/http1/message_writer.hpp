#pragma once
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/message.hpp>

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "problemgate/http1/head_view.hpp"

namespace problemgate::http1 {

/// Appends an HTTP/1.1 request head: request line, every field as stored (in order), blank line.
/// The fields are the ones the session transformed in place; framing fields (Content-Length or
/// Transfer-Encoding) must already say how the body is sent.
void append_request_head(const boost::beast::http::request_header<>& h, std::string& out);
/// The same for a response: status line with the stored reason (or the standard one).
void append_response_head(const boost::beast::http::response_header<>& h, std::string& out);

/// Appends "name: value\r\n".
inline void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ", 2);
  out.append(value);
  out.append("\r\n", 2);
}

/// Appends every field line of `head` whose name is not in `skip`, in order, values trimmed.
void append_fields_except(const HeadView& head, const NameSet& skip, std::string& out);

/// Turns a head and a stream of body pieces into the gather buffers of one write each, so the
/// head goes out with the first piece (one sendmsg for a small message) and chunked framing is
/// written around each piece without copying it. Replaces Beast's serializer on the data path,
/// which cost about a quarter of a proxied request's instructions in buffer-sequence plumbing.
///
/// Modes: `length` sends pieces as they are (Content-Length bodies, or a body that ends at
/// close); `chunked` frames each non-empty piece and ends with the last chunk (no trailers);
/// `none` sends the head only (HEAD responses, 204, 304) and ignores pieces.
class MessageWriter {
 public:
  enum class Framing { length, chunked, none };

  /// `head` must stay alive and unchanged until the writer is done with it.
  MessageWriter(const std::string& head, Framing framing) noexcept
      : head_(head), framing_(framing) {}

  /// The buffers to write for the next body piece (`last`: nothing follows). Empty when there is
  /// nothing to send (an empty, non-final piece after the head went out).
  std::span<const boost::asio::const_buffer> next(const char* data, std::size_t size,
                                                  bool last) noexcept;

  bool head_sent() const noexcept { return head_sent_; }
  bool done() const noexcept { return done_; }

 private:
  const std::string& head_;
  Framing framing_;
  bool head_sent_ = false;
  bool done_ = false;
  char chunk_line_[24];  // "<hex>\r\n" of the current piece
  std::array<boost::asio::const_buffer, 4> bufs_;
};

}  // namespace problemgate::http1
