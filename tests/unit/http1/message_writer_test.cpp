#include "problemgate/http1/message_writer.hpp"

#include <doctest/doctest.h>

#include <string>

using problemgate::http1::MessageWriter;
namespace http = boost::beast::http;
namespace net = boost::asio;

namespace {

std::string concat(std::span<const net::const_buffer> bufs) {
  std::string out;
  for (const auto& b : bufs) out.append(static_cast<const char*>(b.data()), b.size());
  return out;
}

}  // namespace

TEST_SUITE("http1.message_writer") {
  TEST_CASE("request head: request line, fields in order, blank line") {
    http::request_header<> h;
    h.method(http::verb::post);
    h.target("/a?b=1");
    h.version(11);
    h.set(http::field::host, "up:8080");
    h.insert("X-Custom", "one");
    h.insert("x-custom", "two");
    h.set(http::field::content_length, "3");
    std::string out;
    problemgate::http1::append_request_head(h, out);
    CHECK(out ==
          "POST /a?b=1 HTTP/1.1\r\nHost: up:8080\r\nX-Custom: one\r\nx-custom: two\r\n"
          "Content-Length: 3\r\n\r\n");
  }

  TEST_CASE("response head: the upstream's reason is kept, a missing one is the standard one") {
    http::response_header<> h;
    h.result(404);
    h.version(11);
    h.reason("Nope");
    h.set(http::field::content_type, "text/plain");
    std::string out;
    problemgate::http1::append_response_head(h, out);
    CHECK(out == "HTTP/1.1 404 Nope\r\nContent-Type: text/plain\r\n\r\n");
    http::response_header<> h2;
    h2.result(503);
    h2.version(11);
    out.clear();
    problemgate::http1::append_response_head(h2, out);
    CHECK(out == "HTTP/1.1 503 Service Unavailable\r\n\r\n");
  }

  TEST_CASE("length framing: head with the first piece, pieces as they are") {
    const std::string head = "H\r\n\r\n";
    MessageWriter w(head, MessageWriter::Framing::length);
    CHECK_FALSE(w.head_sent());
    CHECK(concat(w.next("abc", 3, false)) == "H\r\n\r\nabc");
    CHECK(w.head_sent());
    CHECK(w.next(nullptr, 0, false).empty());  // nothing to send
    CHECK(concat(w.next("de", 2, true)) == "de");
    CHECK(w.done());
    CHECK(w.next("x", 1, true).empty());  // nothing after the end
  }

  TEST_CASE("a message without a body is its head alone") {
    const std::string head = "H\r\n\r\n";
    MessageWriter w(head, MessageWriter::Framing::length);
    CHECK(concat(w.next(nullptr, 0, true)) == head);
    CHECK(w.done());
  }

  TEST_CASE("chunked framing: hex sizes, no empty chunk mid-stream, one last chunk") {
    const std::string head = "H\r\n\r\n";
    MessageWriter w(head, MessageWriter::Framing::chunked);
    CHECK(concat(w.next(nullptr, 0, false)) == head);  // the head alone may go first
    const std::string big(0x1a2b, 'x');
    CHECK(concat(w.next(big.data(), big.size(), false)) == "1a2b\r\n" + big + "\r\n");
    CHECK(w.next(nullptr, 0, false).empty());
    CHECK(concat(w.next("hello", 5, true)) == "5\r\nhello\r\n0\r\n\r\n");
    CHECK(w.done());
  }

  TEST_CASE("chunked framing: an empty final piece is the last chunk alone") {
    const std::string head = "H\r\n\r\n";
    MessageWriter w(head, MessageWriter::Framing::chunked);
    CHECK(concat(w.next("ab", 2, false)) == "H\r\n\r\n2\r\nab\r\n");
    CHECK(concat(w.next(nullptr, 0, true)) == "0\r\n\r\n");
  }

  TEST_CASE("framing none: the head only, whatever pieces come") {
    const std::string head = "H\r\n\r\n";
    MessageWriter w(head, MessageWriter::Framing::none);
    CHECK(concat(w.next("body", 4, true)) == head);
    CHECK(w.done());
  }
}
