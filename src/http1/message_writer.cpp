#include "problemgate/http1/message_writer.hpp"

#include <string_view>

namespace problemgate::http1 {

namespace http = boost::beast::http;
namespace net = boost::asio;

namespace {

void append_fields(const http::fields& f, std::string& out) {
  for (const auto& field : f) {
    out.append(field.name_string());
    out.append(": ", 2);
    out.append(field.value());
    out.append("\r\n", 2);
  }
  out.append("\r\n", 2);
}

void append_version(unsigned version, std::string& out) {
  out.append("HTTP/", 5);
  out.push_back(static_cast<char>('0' + version / 10 % 10));
  out.push_back('.');
  out.push_back(static_cast<char>('0' + version % 10));
}

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kCrlfLastChunk = "\r\n0\r\n\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace

void append_fields_except(const HeadView& head, const NameSet& skip, std::string& out) {
  for (const auto& f : head.fields) {
    const std::string_view name = head.name(f);
    if (skip.contains(name)) continue;
    append_field(out, name, head.value(f));
  }
}

void append_request_head(const http::request_header<>& h, std::string& out) {
  out.append(h.method_string());
  out.push_back(' ');
  out.append(h.target());
  out.push_back(' ');
  append_version(h.version(), out);
  out.append("\r\n", 2);
  append_fields(h, out);
}

void append_response_head(const http::response_header<>& h, std::string& out) {
  append_version(h.version(), out);
  out.push_back(' ');
  const unsigned status = h.result_int();
  out.push_back(static_cast<char>('0' + status / 100 % 10));
  out.push_back(static_cast<char>('0' + status / 10 % 10));
  out.push_back(static_cast<char>('0' + status % 10));
  out.push_back(' ');
  out.append(h.reason());
  out.append("\r\n", 2);
  append_fields(h, out);
}

std::span<const net::const_buffer> MessageWriter::next(const char* data, std::size_t size,
                                                       bool last) noexcept {
  std::size_t n = 0;
  if (done_) return {};
  if (!head_sent_) {
    bufs_[n++] = net::buffer(head_);
    head_sent_ = true;
  }
  switch (framing_) {
    case Framing::none: break;
    case Framing::length:
      if (size > 0) bufs_[n++] = net::const_buffer(data, size);
      break;
    case Framing::chunked:
      if (size > 0) {
        static constexpr char kHex[] = "0123456789abcdef";
        char tmp[sizeof(std::size_t) * 2];
        std::size_t len = 0;
        for (std::size_t v = size; v != 0; v >>= 4) tmp[len++] = kHex[v & 0xf];
        for (std::size_t i = 0; i < len; ++i) chunk_line_[i] = tmp[len - 1 - i];
        chunk_line_[len] = '\r';
        chunk_line_[len + 1] = '\n';
        bufs_[n++] = net::const_buffer(chunk_line_, len + 2);
        bufs_[n++] = net::const_buffer(data, size);
        bufs_[n++] = net::buffer(last ? kCrlfLastChunk : kCrlf);
      } else if (last) {
        bufs_[n++] = net::buffer(kLastChunk);
      }
      break;
  }
  if (last) done_ = true;
  return {bufs_.data(), n};
}

}  // namespace problemgate::http1
