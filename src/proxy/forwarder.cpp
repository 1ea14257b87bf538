// A request's way to the upstream: buffering its body, picking endpoints, connecting, sending,
// reading the response head, and the retries between them. The way back is response_relay.cpp.
#include <boost/asio/ssl/error.hpp>

#include <span>

#include "proxy/session_internal.hpp"

namespace problemgate::proxy {

namespace {

/// Content-Length bodies are relayed as raw bytes (the buffered ones first); chunked ones are
/// decoded by Beast's parser, which enforces the chunk framing and the body limit, given a
/// synthetic head (ours was checked and forwarded already).
void start_request_body(const HeadScan& scan, std::uint64_t body_limit, RequestBody& body) {
  body.left = scan.chunked ? 0 : scan.content_length;
  body.done = !scan.chunked && body.left == 0;
  if (!scan.chunked) return;
  static constexpr std::string_view kChunkedHead =
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  body.chunks.emplace();
  if (body_limit > 0)
    body.chunks->body_limit(body_limit);
  else
    body.chunks->body_limit(boost::none);
  boost::system::error_code ec;
  body.chunks->put(net::buffer(kChunkedHead), ec);
}

}  // namespace

void Session::start_forwarding(const Runtime& rt, Forwarding& fw, const HeadScan& scan,
                               const HeadView& req) {
  const auto& cfg = rt.config;
  fw.has_body = scan.chunked || (scan.has_content_length && scan.content_length > 0);
  fw.idempotent = is_idempotent(ex_.method);
  // No 1xx goes to an HTTP/1.0 client (RFC 9110 §15.2): it could not tell it from the answer.
  fw.expect_continue = scan.version_minor == 1 && iequals(req.get("expect"), "100-continue");

  build_upstream_head(rt, scan, req);
  consume_head();  // `req` is not used past this point

  start_request_body(scan, body_limit_of(*fw.route, cfg), fw.body);
  if (scan.chunked || scan.content_length > kReadChunk) {
    buffer_.max_size(std::max(buffer_.max_size(), kRelayChunk + kReadChunk));
    buffer_.reserve(kRelayChunk);
  }
  ex_.request_body.clear();
}

net::awaitable<Session::Outcome> Session::fail_request_body(const Runtime& rt, BodyError e) {
  if (e == BodyError::client_closed) {
    ex_.error = "client_closed";  // nobody left to answer
    co_return Outcome::close;
  }
  co_await local_reply(rt,
                       e == BodyError::too_large ? core::GatewayError::payload_too_large
                       : e == BodyError::timeout ? core::GatewayError::request_timeout
                                                 : core::GatewayError::malformed_request,
                       true);
  co_return Outcome::close;
}

// A slow sender holds only its own connection this way, never one of the upstream's pooled
// ones. A larger body streams on from where the buffer ends (send_request).
net::awaitable<std::optional<Session::Outcome>> Session::buffer_request_body(const Runtime& rt,
                                                                             Forwarding& fw) {
  const auto& limits = rt.config.limits;
  std::string& buffered = ex_.request_body;
  if (fw.expect_continue) {
    // The client waits for this before sending the body it is about to be asked for.
    client_.arm(limits.write_timeout);
    auto [ec, n] = co_await net::async_write(client_, net::buffer(kContinue), kNoThrow);
    fw.continue_sent = true;
    if (ec) co_return co_await fail_request_body(rt, BodyError::client_closed);
  }
  const std::size_t cap = limits.request_buffer_bytes;
  while (!fw.body.done && buffered.size() < cap) {
    const std::size_t old = buffered.size();
    std::size_t room = cap - old;
    if (!fw.body.chunks)
      room = static_cast<std::size_t>(std::min<std::uint64_t>(room, fw.body.left));
    buffered.resize(old + room);
    BodyError err = BodyError::none;
    const std::size_t got = co_await read_body_piece(rt, fw.body, buffered.data() + old, room, err);
    buffered.resize(old + got);
    if (err != BodyError::none) co_return co_await fail_request_body(rt, err);
  }
  co_return std::nullopt;
}

// Which endpoint, and how often. An endpoint is picked by the balancer; a failure there may send
// the request to another one (retries), as long as nothing can have been executed twice by our
// doing: a connect failure (nothing sent; a buffered body counts as unsent), or a reset before
// any response byte for a listed method without a body (can_retry_reset). Retries are bounded by
// retries.attempts and the worker's retry budget, and never follow a response byte. Separately,
// a pooled connection the upstream had closed is tried once more on a new connection to the same
// endpoint (is_stale_pooled_close).
net::awaitable<std::optional<Session::Outcome>> Session::exchange_with_upstream(
    const Runtime& rt, Forwarding& fw, const HeadScan& scan, bool keep_alive) {
  fw.relay.emplace(worker_);
  fw.upstream_started = steady::now();
  fw.started_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(fw.upstream_started.time_since_epoch())
          .count();
  fw.balancer->budget().on_request();
  const auto& retry_cfg = fw.settings->retries;
  auto& cluster = fw.balancer->cluster();
  const bool close_after_reply = fw.has_body || !keep_alive;
  std::array<const upstream::EndpointState*, 12> tried;  // the first tried_n are set
  std::size_t tried_n = 0;
  std::uint32_t retries_left = retry_cfg.attempts;
  bool fresh_only = false;
  bool panic = false;
  // Moves the request to the endpoint picked (null: none is left).
  auto adopt = [&](const std::shared_ptr<upstream::UpstreamPool>* picked) -> bool {
    if (!picked) return false;
    if (panic) cluster.counters.panic_requests.fetch_add(1, std::memory_order_relaxed);
    fw.pool_ref = *picked;
    fw.pool = fw.pool_ref.get();
    fresh_only = false;
    if (tried_n < tried.size()) tried[tried_n++] = fw.pool->endpoint().get();
    if (!ex_.endpoints.empty()) ex_.endpoints += ' ';
    ex_.endpoints += fw.pool->endpoint()->label;
    return true;
  };
  // After a failure on the current endpoint: true when the request moves to another one.
  auto retry_elsewhere = [&](std::atomic<std::uint64_t>& reason) -> bool {
    if (retries_left == 0) return false;
    const auto* next = fw.balancer->pick(fw.started_ns, std::span(tried.data(), tried_n), panic);
    if (!next) return false;
    if (!fw.balancer->budget().try_retry()) {
      cluster.counters.budget_exhausted.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    --retries_left;
    reason.fetch_add(1, std::memory_order_relaxed);
    obs::bump(fw.counters->retries);
    return adopt(next);
  };
  auto fail_on = [&](std::string_view token) {
    ex_.proxy_error = token;
    ex_.next_hop = fw.pool->endpoint()->label;
    cluster.record_failure(*fw.pool->endpoint(), fw.started_ns);
  };

  if (!adopt(fw.balancer->pick(fw.started_ns, {}, panic))) {
    ex_.proxy_error = "destination_unavailable";  // no endpoint: a name that never resolved
    fw.count_failure(obs::UpstreamFailure::refused);
    co_return co_await reply_and_finish(rt, core::GatewayError::upstream_down, close_after_reply);
  }
  for (;;) {
    // --- A connection: an idle pooled one, else a new one.
    auto& acquired = fw.acquired;
    acquired = {};
    if (!fresh_only) {
      acquired.conn =
          fw.pool->take_idle(!fw.has_body && fw.idempotent);  // a stale close is retried below
      acquired.reused = acquired.conn != nullptr;
    }
    if (!acquired.conn) {
      const auto connect_started = steady::now();
      acquired = co_await fw.pool->connect();
      if (acquired.conn)
        fw.counters->connect_duration.observe(
            std::chrono::duration<double>(steady::now() - connect_started).count());
    }
    if (!acquired.conn && (acquired.error == upstream::AcquireError::tls_certificate ||
                           acquired.error == upstream::AcquireError::tls_protocol)) {
      // The TLS handshake failed: nothing was sent, so it is retried like a connect failure;
      // the answer names the failure (RFC 9209), never a hang or a silent close.
      const bool cert = acquired.error == upstream::AcquireError::tls_certificate;
      worker_.shared().metrics.tls.upstream_failed(fw.settings->name,
                                                   cert ? "certificate" : "protocol");
      fw.update_pool_gauges();
      fail_on(cert ? "tls_certificate_error" : "tls_protocol_error");
      ex_.error = "upstream_tls_error";
      if (retry_cfg.on_connect_failure && retry_elsewhere(cluster.counters.retries_connect))
        continue;
      co_return co_await reply_and_finish(rt, core::GatewayError::upstream_tls_error,
                                          close_after_reply);
    }
    if (!acquired.conn) {
      const bool exhausted = acquired.error == upstream::AcquireError::exhausted;
      const bool timed_out = acquired.error == upstream::AcquireError::timeout;
      fw.count_failure(timed_out   ? obs::UpstreamFailure::timeout
                       : exhausted ? obs::UpstreamFailure::exhausted
                                   : obs::UpstreamFailure::refused);
      if (!exhausted) {
        fail_on(timed_out ? "connection_timeout" : "connection_refused");
        if (retry_cfg.on_connect_failure && retry_elsewhere(cluster.counters.retries_connect))
          continue;
      }
      co_return co_await reply_and_finish(rt,
                                          timed_out   ? core::GatewayError::upstream_timeout
                                          : exhausted ? core::GatewayError::gateway_unavailable
                                                      : core::GatewayError::upstream_down,
                                          close_after_reply);
    }
    obs::bump(acquired.reused ? fw.counters->reuses : fw.counters->connects);
    auto& conn = *acquired.conn;
    ++conn.requests;
    ex_.upstream_contacted = true;
    ex_.upstream_sent = steady::now();

    // --- The request out. A request without a body is its head alone, written here: the
    // common case pays for no coroutine of its own.
    SendResult sent = SendResult::sent;
    fw.upstream_error = {};
    if (fw.has_body) {
      BodyError body_error = BodyError::none;
      sent = co_await send_request(rt, fw, scan, conn, body_error);
      if (sent == SendResult::client_failed) {
        fw.pool->discard(std::move(acquired.conn));
        co_return co_await fail_request_body(rt, body_error);
      }
    } else {
      conn.stream.arm(fw.settings->timeout);
      auto [ec, n] = co_await net::async_write(conn.stream, net::buffer(up_head_), kNoThrow);
      if (ec) {
        fw.upstream_error = ec;
        sent = SendResult::upstream_failed;
      }
    }

    // --- The response head in (interim 1xx responses dropped).
    AttemptFailure failure{acquired.reused, fresh_only, false, false, fw.has_body, fw.idempotent};
    while (sent == SendResult::sent && !scan_response_head(fw, conn)) {
      conn.stream.arm(fw.settings->timeout);
      auto [ec, n] = co_await conn.stream.async_read_some(
          conn.buffer.prepare(std::min(kReadChunk, conn.buffer.max_size() - conn.buffer.size())),
          kNoThrow);
      if (ec) {
        fw.upstream_error = ec;
        failure.timed_out = conn.stream.timed_out();
        sent = SendResult::upstream_failed;
        break;
      }
      failure.got_any_byte = true;
      conn.buffer.commit(n);
    }
    if (sent == SendResult::sent) {
      if (fw.response.verdict == HeadVerdict::ok) co_return std::nullopt;
      fw.pool->discard(std::move(acquired.conn));
      fw.count_failure(obs::UpstreamFailure::bad_response);
      ex_.error = "bad_response";
      ex_.proxy_error = "http_protocol_error";
      ex_.next_hop = fw.pool->endpoint()->label;
      co_return co_await reply_and_finish(rt, core::GatewayError::upstream_down, close_after_reply);
    }

    // --- The attempt failed: once more, elsewhere, or a 502/504.
    fw.pool->discard(std::move(acquired.conn));
    if (is_stale_pooled_close(failure)) {
      fresh_only = true;
      obs::bump(fw.counters->retries);
      continue;
    }
    if (!failure.timed_out && !failure.got_any_byte &&
        fw.upstream_error.category() == net::error::get_ssl_category()) {
      // A TLS alert instead of a response: the upstream refused the session after the
      // handshake (a TLS 1.3 server checks the client certificate then).
      worker_.shared().metrics.tls.upstream_failed(fw.settings->name, "protocol");
      fw.update_pool_gauges();
      fail_on("tls_protocol_error");
      co_return co_await reply_and_finish(rt, core::GatewayError::upstream_tls_error,
                                          close_after_reply);
    }
    fw.count_failure(failure.timed_out ? obs::UpstreamFailure::timeout
                                       : obs::UpstreamFailure::reset);
    if (failure.timed_out) {
      ex_.proxy_error = "http_response_timeout";
      ex_.next_hop = fw.pool->endpoint()->label;
      co_return co_await reply_and_finish(rt, core::GatewayError::upstream_timeout,
                                          close_after_reply);
    }
    fail_on("connection_terminated");
    if (can_retry_reset(failure, retry_cfg.on_reset, retry_cfg.methods,
                        retry_method_bit(ex_.method)) &&
        retry_elsewhere(cluster.counters.retries_reset))
      continue;
    co_return co_await reply_and_finish(rt, core::GatewayError::upstream_down, close_after_reply);
  }
}

net::awaitable<Session::SendResult> Session::send_request(const Runtime& rt, Forwarding& fw,
                                                          const HeadScan& scan,
                                                          upstream::Connection& conn,
                                                          BodyError& body_error) {
  const auto& limits = rt.config.limits;
  if (fw.has_body && fw.expect_continue && !fw.continue_sent) {
    // We answer Expect ourselves (as nginx does) once the request is known to go upstream.
    client_.arm(limits.write_timeout);
    auto [ec, n] = co_await net::async_write(client_, net::buffer(kContinue), kNoThrow);
    fw.continue_sent = true;
    if (ec) {
      body_error = BodyError::client_closed;
      co_return SendResult::client_failed;
    }
  }
  MessageWriter writer(
      up_head_, scan.chunked ? MessageWriter::Framing::chunked : MessageWriter::Framing::length);
  const std::string& buffered = ex_.request_body;
  bool buffered_sent = buffered.empty();
  for (;;) {
    const char* piece = nullptr;
    std::size_t piece_size = 0;
    if (!buffered_sent) {
      piece = buffered.data();
      piece_size = buffered.size();
      buffered_sent = true;
    } else if (!fw.body.done) {
      char* dst = fw.relay->data();
      const std::size_t got = co_await read_body_piece(rt, fw.body, dst, kRelayChunk, body_error);
      if (body_error != BodyError::none) co_return SendResult::client_failed;
      if (got == 0 && !fw.body.done) continue;  // only framing was parsed
      piece = dst;
      piece_size = got;
    }
    const auto bufs = writer.next(piece, piece_size, fw.body.done && buffered_sent);
    if (!bufs.empty()) {
      conn.stream.arm(fw.settings->timeout);
      auto [ec, n] = co_await net::async_write(conn.stream, bufs, kNoThrow);
      if (ec) {
        fw.upstream_error = ec;
        co_return SendResult::upstream_failed;
      }
    }
    if (writer.done()) co_return SendResult::sent;
  }
}

bool Session::scan_response_head(Forwarding& fw, upstream::Connection& conn) {
  static constexpr HeadLimits kLimits{kUpstreamHeadLimit, kUpstreamHeadLimit, 1000};
  HeadScan& head = fw.response;
  for (;;) {
    conn.buffer.max_size(2 * kUpstreamHeadLimit + kReadChunk);
    head = http1::scan_response_head(view_of(conn.buffer), kLimits, &res_fields_);
    if (head.verdict == HeadVerdict::ok && head.status >= 100 && head.status < 200 &&
        head.status != 101) {
      conn.buffer.consume(head.head_bytes);  // 100 / 103: interim, not forwarded
      continue;
    }
    if (head.verdict != HeadVerdict::incomplete) return true;  // a head, or a bad one (a 502)
    if (conn.buffer.size() >= conn.buffer.max_size()) {
      head.verdict = HeadVerdict::too_large;
      return true;
    }
    return false;
  }
}

}  // namespace problemgate::proxy
