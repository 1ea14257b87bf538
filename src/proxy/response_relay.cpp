// The response's way back: its framing decided from the scanned head, an error body buffered and
// rewritten (error_rewrite.cpp), any other body relayed as it comes, the connection pooled or
// closed (forward_rules.hpp).
#include "proxy/session_internal.hpp"

namespace problemgate::proxy {

namespace {

/// How the body behind `head` is read. Content-Length bodies are relayed as raw bytes, without
/// a parser: the bytes buffered behind the head first, then reads of at most what is left
/// (nothing past the body is ever read, so an over-long response is detected by the pool).
/// Chunked and close-delimited bodies go through Beast's parser, given a synthetic head, which
/// checks the chunk framing.
void start_response_body(const HeadScan& head, bool no_body, ResponseBody& body) {
  body.none = no_body;
  body.raw = !no_body && !head.chunked && head.has_content_length;
  body.left = body.raw ? head.content_length : 0;
  if (no_body || body.raw) return;
  static constexpr std::string_view kChunkedHead =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  static constexpr std::string_view kUntilCloseHead = "HTTP/1.1 200 OK\r\n\r\n";
  body.decoded.emplace();
  body.decoded->body_limit(boost::none);
  boost::system::error_code ec;
  body.decoded->put(net::buffer(head.chunked ? kChunkedHead : kUntilCloseHead), ec);
}

}  // namespace

net::awaitable<std::size_t> read_response_piece(upstream::Connection& conn, ResponseBody& body,
                                                config::Duration timeout, char* dst,
                                                std::size_t cap, bool& failed) {
  failed = false;
  if (body.raw) {
    boost::system::error_code ec;
    const std::size_t got =
        co_await read_bounded(conn.stream, conn.buffer, timeout, dst, cap, body.left, ec);
    failed = got == 0;
    co_return got;
  }
  auto& parser = *body.decoded;
  parser.get().body().data = dst;
  parser.get().body().size = cap;
  conn.stream.arm(timeout);
  auto [ec, n] = co_await http::async_read_some(conn.stream, conn.buffer, parser, kNoThrow);
  if (ec == http::error::need_buffer) ec = {};
  const std::size_t got = cap - parser.get().body().size;
  failed = static_cast<bool>(ec);
  co_return failed ? 0 : got;
}

net::awaitable<Session::Outcome> Session::relay_response(const Runtime& rt, Forwarding& fw,
                                                         const HeadScan& scan, bool keep_alive) {
  const auto& cfg = rt.config;
  const HeadScan& head = fw.response;
  auto& conn = *fw.acquired.conn;
  // Passive outlier detection sees the answer: 502/503/504 count against the endpoint.
  if (head.status == 502 || head.status == 503 || head.status == 504)
    fw.balancer->cluster().record_failure(*fw.pool->endpoint(), fw.started_ns);
  else
    upstream::Cluster::record_success(*fw.pool->endpoint());
  auto& route_counters = snapshot_->route_counters(ex_.route);
  {
    const auto head_at = steady::now();
    const std::size_t cls = obs::status_class_index(head.status);
    const double upstream_s = std::chrono::duration<double>(head_at - fw.upstream_started).count();
    route_counters.upstream_duration[cls].observe(upstream_s);
    route_counters.upstream_response_head[cls].observe(
        std::chrono::duration<double>(head_at - ex_.upstream_sent).count());
    ex_.upstream_status = head.status;
    ex_.upstream_ms = upstream_s * 1000.0;
  }

  // The response head, as scanned (no I/O, no field container).
  HeadView res{view_of(conn.buffer).substr(0, head.head_bytes), res_fields_};
  const int status = head.status;
  ex_.status = status;
  if (status == 101) {
    // A tunnel opens only here: after the upstream agreed to the WebSocket upgrade this request
    // asked for. A 101 we did not ask for, or to another protocol, is a bad response.
    if (ex_.wants_websocket && res.has_token("upgrade", "websocket"))
      co_return co_await open_tunnel(rt, res, head, std::move(fw.acquired.conn), *fw.pool);
    fw.pool->discard(std::move(fw.acquired.conn));
    fw.count_failure(obs::UpstreamFailure::bad_response);
    ex_.error = "bad_response";
    co_await local_reply(rt, core::GatewayError::upstream_down, true);
    co_return Outcome::close;
  }
  const bool no_body = ex_.method == "HEAD" || status == 204 || status == 304;
  conn.check_on_reuse = no_body;  // a body the upstream sends anyway would arrive after this head
  const bool keeps_alive = upstream_keeps_alive(
      no_body, head.chunked, head.has_content_length, head.version_minor,
      res.has_token("connection", "close"), res.has_token("connection", "keep-alive"));
  ResponseBody& body = fw.response_body;
  start_response_body(head, no_body, body);

  // Rate-limit information the upstream reported (headers), for merging (spec §6).
  ex_.upstream_limit = ratelimit::parse_upstream_headers(
      res.get(core::hdr::kRateLimitLimit), res.get(core::hdr::kRateLimitRemaining),
      res.get(core::hdr::kRateLimitReset), res.get("retry-after"),
      worker_.shared().clock.now_ns() / 1'000'000'000);

  // Error responses are buffered (up to the cap) and rewritten before anything is sent.
  const bool rewrite = status >= 400 && fw.route->problem.normalize && !no_body;
  // Spec §1: an error body announced over the cap is not read at all; the client gets the
  // status-only problem and the upstream connection is closed rather than drained.
  const bool declared_oversize =
      rewrite && head.has_content_length && head.content_length > cfg.problem.max_error_body;
  bool chunk_out = false;
  if (!no_body && (head.chunked || !head.has_content_length)) {
    // Unknown length: chunk it for HTTP/1.1 clients; a 1.0 client reads until close.
    if (scan.version_minor == 1)
      chunk_out = true;
    else
      keep_alive = false;
  }
  if (rewrite) {
    // The body reads below may move the connection buffer: keep a copy of this (small) head.
    error_head_.assign(res.bytes);
    res.bytes = error_head_;
  } else {
    build_response_head(rt, res, head, false, chunk_out, keep_alive);
  }
  conn.buffer.consume(head.head_bytes);
  // Large bodies: let each read take up to a relay chunk, instead of many 8 KiB reads.
  if (!no_body && (!head.has_content_length || head.content_length > kReadChunk))
    conn.buffer.reserve(std::min(kRelayChunk, conn.buffer.max_size()));

  std::size_t prefix = 0;  // bytes of ex_.error_body already read, to relay first
  bool rewritten = false;
  if (rewrite) {
    auto& err_body = ex_.error_body;
    err_body.clear();
    if (!declared_oversize && body.raw) {
      // What came with the head first, without I/O: most error bodies are all there. Sized by
      // what is buffered, not by the announced length: no zero-filling of bytes not yet read.
      const std::size_t room = static_cast<std::size_t>(
          std::min<std::uint64_t>({body.left, cfg.problem.max_error_body + 1, conn.buffer.size()}));
      err_body.resize(room);
      err_body.resize(take_buffered(conn.buffer, err_body.data(), room, body.left));
    }
    if (!declared_oversize && !body.done() && err_body.size() <= cfg.problem.max_error_body &&
        !co_await read_error_body(rt, fw)) {
      fw.pool->discard(std::move(fw.acquired.conn));
      fw.count_failure(obs::UpstreamFailure::reset);
      ex_.error = "bad_response";
      co_return co_await reply_and_finish(rt, core::GatewayError::upstream_down,
                                          fw.has_body || !keep_alive);
    }
    // Not complete (over the cap, announced or found while reading): the oversize problem, and
    // the rest of the body is never read (the connection is discarded below, as the body is not
    // done).
    rewritten = rewrite_error(rt, res, status, !declared_oversize && body.done(), route_counters);
    if (!rewritten) prefix = ex_.error_body.size();  // relayed as it came
    build_response_head(rt, res, head, rewritten, !rewritten && chunk_out, keep_alive);
  }

  // --- Relay the body (or the rewritten one). The head goes out with the first piece.
  MessageWriter writer(down_head_, no_body                   ? MessageWriter::Framing::none
                                   : !rewritten && chunk_out ? MessageWriter::Framing::chunked
                                                             : MessageWriter::Framing::length);
  const auto timeout = fw.settings->timeout;
  char* const relay = fw.relay->data();
  bool upstream_ok = true;
  bool client_ok = true;
  bool prefix_sent = prefix == 0;
  for (;;) {
    const char* piece = nullptr;
    std::size_t piece_size = 0;
    bool last = true;
    if (rewritten) {
      piece = ex_.normalized.body.data();
      piece_size = ex_.normalized.body.size();
    } else if (!prefix_sent) {
      piece = ex_.error_body.data();
      piece_size = prefix;
      prefix_sent = true;
      last = body.done();
    } else if (body.raw && body.left >= kSpliceMin && conn.buffer.size() == 0 &&
               writer.head_sent() && !conn.stream.is_tls() && !client_.is_tls()) {
      // A large Content-Length body, with the head and any buffered bytes already out: the
      // kernel moves the rest socket to socket (splice), no copy through this process. With no
      // pipe to be had (descriptors), it is read and written here. Through TLS on either side
      // the kernel cannot move the bytes (encrypted differently on each side): those are copied
      // through the relay buffer below, so memory stays constant.
      Pipe pipe = worker_.pipes().take();
      if (pipe.valid()) {
        const SpliceOutcome r = co_await http1::splice_body(
            conn.stream, timeout, client_, cfg.limits.write_timeout, pipe, body.left);
        worker_.pipes().give(std::move(pipe));
        ex_.bytes_out += r.bytes_out;
        if (!r.from_ok || !r.to_ok) {
          upstream_ok = r.from_ok;
          client_ok = r.to_ok;
          break;
        }
      } else {
        bool failed = false;
        piece_size = co_await read_response_piece(conn, body, timeout, relay, kRelayChunk, failed);
        if (failed) {
          upstream_ok = false;
          break;
        }
        piece = relay;
        last = body.done();
      }
    } else if (body.raw && body.left > 0) {
      // Inline rather than through read_response_piece: one coroutine frame less on the path
      // of every small 2xx (the budget test counts it).
      piece_size = take_buffered(conn.buffer, relay, kRelayChunk, body.left);
      if (piece_size == 0) {
        boost::system::error_code ec;
        piece_size = co_await read_bounded(conn.stream, conn.buffer, timeout, relay, kRelayChunk,
                                           body.left, ec);
      }
      if (piece_size == 0) {
        upstream_ok = false;
        break;
      }
      piece = relay;
      last = body.done();
    } else if (!body.done()) {
      bool failed = false;
      piece_size = co_await read_response_piece(conn, body, timeout, relay, kRelayChunk, failed);
      if (failed) {
        upstream_ok = false;
        break;
      }
      if (piece_size == 0 && !body.done()) continue;  // only chunk framing was read
      piece = relay;
      last = body.done();
    }
    const auto bufs = writer.next(piece, piece_size, last);
    if (!bufs.empty()) {
      client_.arm(cfg.limits.write_timeout);
      auto [ec, n] = co_await net::async_write(client_, bufs, kNoThrow);
      ex_.bytes_out += n;
      if (ec) {
        client_ok = false;
        break;
      }
    }
    if (writer.done()) break;
  }
  client_.disarm();

  if (!upstream_ok) {
    fw.pool->discard(std::move(fw.acquired.conn));
    fw.count_failure(obs::UpstreamFailure::reset);
    ex_.error = "upstream_reset";
    // Nothing reached the client yet: a clean 502 is still honest. Once the status line went
    // out, never fabricate a complete message after it: the connection closes.
    if (!writer.head_sent()) co_await local_reply(rt, core::GatewayError::upstream_down, true);
    co_return Outcome::close;
  }
  const ExchangeEnd end{
      body.done(), keeps_alive, fw.body.done,
      declares_forbidden_body(status, head.chunked, head.has_content_length, head.content_length)};
  if (!client_ok) {
    ex_.error = "client_closed";
    fw.finish_connection(end);
    co_return Outcome::close;
  }
  fw.finish_connection(end);
  fw.update_pool_gauges();
  co_return keep_alive ? Outcome::keep_alive : Outcome::close;
}

net::awaitable<bool> Session::read_error_body(const Runtime& rt, Forwarding& fw) {
  ResponseBody& body = fw.response_body;
  auto& conn = *fw.acquired.conn;
  auto& err_body = ex_.error_body;
  const std::size_t cap = rt.config.problem.max_error_body;
  while (!body.done() && err_body.size() <= cap) {
    const std::size_t old = err_body.size();
    // Size each read by what is announced (or a small step): zero-filling a 64 KiB string for
    // a 200-byte error body would cost more than the rewrite itself.
    const std::size_t want = body.raw ? static_cast<std::size_t>(body.left) + 1 : kReadChunk;
    const std::size_t room = std::min({kRelayChunk, cap + 1 - old, std::max<std::size_t>(want, 1)});
    err_body.resize(old + room);
    bool failed = false;
    std::size_t got = 0;
    if (body.raw) {  // as read_response_piece does, one coroutine frame less per error
      boost::system::error_code ec;
      got = co_await read_bounded(conn.stream, conn.buffer, fw.settings->timeout,
                                  err_body.data() + old, room, body.left, ec);
      failed = got == 0;
    } else {
      got = co_await read_response_piece(conn, body, fw.settings->timeout, err_body.data() + old,
                                         room, failed);
    }
    err_body.resize(old + got);
    if (failed) co_return false;
  }
  co_return true;
}

}  // namespace problemgate::proxy
