#include <boost/asio/ssl/error.hpp>

#include <span>

#include "proxy/session_internal.hpp"

namespace problemgate::proxy {

net::awaitable<Session::Outcome> Session::forward(const Runtime& rt, const http1::HeadScan& scan,
                                                  const http1::HeadView& req, bool keep_alive) {
  const auto& route = *ex_.route;
  const auto& cfg = rt.config;
  const auto& up_cfg = cfg.upstreams[route.upstream_index];
  auto& balancer = snapshot_->balancer(route.upstream_index);
  auto& cluster = balancer.cluster();
  const auto& retry_cfg = up_cfg.retries;
  const bool has_body = scan.chunked || (scan.has_content_length && scan.content_length > 0);
  const bool is_head = ex_.method == "HEAD";
  const bool idempotent = is_idempotent(ex_.method);
  // No 1xx goes to an HTTP/1.0 client (RFC 9110 §15.2): it could not tell it from the answer.
  const bool expect_continue = scan.version_minor == 1 && http1::iequals(req.get("expect"), "100-continue");
  const std::uint64_t body_limit = body_limit_of(route, cfg);

  build_upstream_head(rt, scan, req);
  consume_head();  // `req` is not used past this point

  // --- Where the request body comes from: Content-Length bodies are relayed as raw bytes (the
  // buffered ones first); chunked ones are decoded by Beast's parser, which enforces the chunk
  // framing and the body limit, given a synthetic head (ours was checked and forwarded above).
  RequestBody body;
  body.left = scan.chunked ? 0 : scan.content_length;
  body.done = !scan.chunked && body.left == 0;
  if (scan.chunked) {
    static constexpr std::string_view kChunkedHead =
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    body.chunks.emplace();
    if (body_limit > 0) body.chunks->body_limit(body_limit);
    else body.chunks->body_limit(boost::none);
    boost::system::error_code ec;
    body.chunks->put(net::buffer(kChunkedHead), ec);
  }
  if (scan.chunked || scan.content_length > kReadChunk) {
    buffer_.max_size(std::max(buffer_.max_size(), kRelayChunk + kReadChunk));
    buffer_.reserve(kRelayChunk);
  }
  bool continue_sent = false;
  // A body error from the client: the matching canonical reply (or none when it left).
  auto fail_body = [&](BodyError e) -> net::awaitable<Outcome> {
    if (e == BodyError::client_closed) {
      ex_.error = "client_closed";  // nobody left to answer
      co_return Outcome::close;
    }
    co_await local_reply(rt, e == BodyError::too_large ? core::GatewayError::payload_too_large
                             : e == BodyError::timeout ? core::GatewayError::request_timeout
                                                       : core::GatewayError::malformed_request,
                         true);
    co_return Outcome::close;
  };

  // --- Request buffering (nginx's proxy_request_buffering): the body, up to
  // limits.request_buffer_bytes, is read before an upstream connection is taken, so a slow
  // sender holds only its own connection, never one of the upstream's pooled ones. A larger
  // body streams on from there.
  std::string& buffered = ex_.request_body;
  buffered.clear();
  const std::size_t buffer_cap = cfg.limits.request_buffer_bytes;
  if (!body.done && buffer_cap > 0) {
    if (expect_continue) {
      // The client waits for this before sending the body it is about to be asked for.
      client_.arm(cfg.limits.write_timeout);
      auto [ec, n] = co_await net::async_write(client_, net::buffer(kContinue), kNoThrow);
      continue_sent = true;
      if (ec) co_return co_await fail_body(BodyError::client_closed);
    }
    while (!body.done && buffered.size() < buffer_cap) {
      const std::size_t old = buffered.size();
      std::size_t room = buffer_cap - old;
      if (!body.chunks) room = static_cast<std::size_t>(std::min<std::uint64_t>(room, body.left));
      buffered.resize(old + room);
      BodyError err = BodyError::none;
      const std::size_t got = co_await read_body_piece(rt, body, buffered.data() + old, room, err);
      buffered.resize(old + got);
      if (err != BodyError::none) co_return co_await fail_body(err);
    }
  }

  RelayBuffer relay(worker_);
  upstream::Acquired acquired;
  auto& uc = snapshot_->upstream_counters(route.upstream_index);
  auto update_pool_gauges = [&] {
    uc.open.store(balancer.open_count(), std::memory_order_relaxed);
    uc.idle.store(balancer.idle_count(), std::memory_order_relaxed);
  };
  auto count_failure = [&](obs::UpstreamFailure f) {
    obs::bump(uc.failures[static_cast<std::size_t>(f)]);
    update_pool_gauges();
  };
  const auto upstream_started = steady::now();
  const std::int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(upstream_started.time_since_epoch()).count();
  balancer.budget().on_request();

  // --- Which endpoint, and how often. An endpoint is picked by the balancer; a failure there
  // may send the request to another one (retries), as long as nothing can have been executed
  // twice by our doing: a connect failure (nothing sent; a buffered body counts as unsent), or
  // a reset before any response byte for an idempotent method without a body. Retries are
  // bounded by retries.attempts and the worker's retry budget, and never follow a response
  // byte. Separately, a reused keep-alive connection that the upstream had closed is retried
  // once on a new connection to the same endpoint (the race every keep-alive pool has), for
  // requests without a body.
  std::array<const upstream::EndpointState*, 12> tried;  // the first tried_n are set
  std::size_t tried_n = 0;
  std::uint32_t retries_left = retry_cfg.attempts;
  // Asked only after a reset (rare): a method listed in retries.methods, without a body.
  auto reset_retryable = [&] {
    const std::uint8_t bit = ex_.method == "GET"       ? config::kRetryGet
                             : ex_.method == "HEAD"    ? config::kRetryHead
                             : ex_.method == "OPTIONS" ? config::kRetryOptions
                             : ex_.method == "PUT"     ? config::kRetryPut
                             : ex_.method == "DELETE"  ? config::kRetryDelete
                                                       : 0;
    return !has_body && (retry_cfg.methods & bit) != 0;
  };
  std::shared_ptr<upstream::UpstreamPool> pool_ref;  // held: a DNS change may drop it from the balancer
  upstream::UpstreamPool* pool = nullptr;
  bool fresh_only = false;  // a stale pooled connection failed: open a new one to the same endpoint
  bool panic = false;
  // Moves the request to the endpoint picked (null: none is left).
  auto adopt = [&](const std::shared_ptr<upstream::UpstreamPool>* picked) -> bool {
    if (!picked) return false;
    if (panic) cluster.counters.panic_requests.fetch_add(1, std::memory_order_relaxed);
    pool_ref = *picked;
    pool = pool_ref.get();
    fresh_only = false;
    if (tried_n < tried.size()) tried[tried_n++] = pool->endpoint().get();
    if (!ex_.endpoints.empty()) ex_.endpoints += ' ';
    ex_.endpoints += pool->endpoint()->label;
    return true;
  };
  // After a failure on the current endpoint: true when the request moves to another one.
  auto retry_elsewhere = [&](std::atomic<std::uint64_t>& reason) -> bool {
    if (retries_left == 0) return false;
    const auto* next = balancer.pick(now_ns, std::span(tried.data(), tried_n), panic);
    if (!next) return false;
    if (!balancer.budget().try_retry()) {
      cluster.counters.budget_exhausted.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    --retries_left;
    reason.fetch_add(1, std::memory_order_relaxed);
    obs::bump(uc.retries);
    return adopt(next);
  };
  auto fail_on = [&](std::string_view token) {
    ex_.proxy_error = token;
    ex_.next_hop = pool->endpoint()->label;
  };
  http1::HeadScan rscan;
  if (!adopt(balancer.pick(now_ns, {}, panic))) {
    ex_.proxy_error = "destination_unavailable";  // no endpoint: a name that never resolved
    count_failure(obs::UpstreamFailure::refused);
    co_return co_await reply_and_finish(rt, core::GatewayError::upstream_down, has_body || !keep_alive);
  }
  for (;;) {
    acquired = {};
    if (!fresh_only) {
      acquired.conn = pool->take_idle(!has_body && idempotent);  // the retry below covers a close
      acquired.reused = acquired.conn != nullptr;
    }
    if (!acquired.conn) acquired = co_await pool->connect();
    if (acquired.conn) obs::bump(acquired.reused ? uc.reuses : uc.connects);
    if (!acquired.conn && (acquired.error == upstream::AcquireError::tls_certificate ||
                           acquired.error == upstream::AcquireError::tls_protocol)) {
      // The TLS handshake failed: nothing was sent, so it is retried like a connect failure;
      // the answer names the failure (RFC 9209), never a hang or a silent close.
      const bool cert = acquired.error == upstream::AcquireError::tls_certificate;
      worker_.shared().metrics.tls.upstream_failed(up_cfg.name, cert ? "certificate" : "protocol");
      update_pool_gauges();
      cluster.record_failure(*pool->endpoint(), now_ns);
      fail_on(cert ? "tls_certificate_error" : "tls_protocol_error");
      ex_.error = "upstream_tls_error";
      if (retry_cfg.on_connect_failure && retry_elsewhere(cluster.counters.retries_connect)) continue;
      co_return co_await reply_and_finish(rt, core::GatewayError::upstream_tls_error, has_body || !keep_alive);
    }
    if (!acquired.conn) {
      const bool exhausted = acquired.error == upstream::AcquireError::exhausted;
      const bool timed_out = acquired.error == upstream::AcquireError::timeout;
      count_failure(timed_out ? obs::UpstreamFailure::timeout
                    : exhausted ? obs::UpstreamFailure::exhausted
                                : obs::UpstreamFailure::refused);
      if (!exhausted) {
        cluster.record_failure(*pool->endpoint(), now_ns);
        fail_on(timed_out ? "connection_timeout" : "connection_refused");
        if (retry_cfg.on_connect_failure && retry_elsewhere(cluster.counters.retries_connect)) continue;
      }
      const auto e = timed_out ? core::GatewayError::upstream_timeout
                     : exhausted ? core::GatewayError::gateway_unavailable
                                 : core::GatewayError::upstream_down;
      co_return co_await reply_and_finish(rt, e, has_body || !keep_alive);
    }
    auto& conn = *acquired.conn;
    ++conn.requests;

    // --- Send the request head and stream the body (the head goes out with the first piece).
    http1::MessageWriter sr(up_head_, scan.chunked ? http1::MessageWriter::Framing::chunked
                                            : http1::MessageWriter::Framing::length);
    bool upstream_failed = false;
    bool client_failed = false;
    boost::system::error_code upstream_ec;  // why upstream_failed
    if (has_body && expect_continue && !continue_sent) {
      // We answer Expect ourselves (as nginx does) once the request is known to go upstream.
      client_.arm(cfg.limits.write_timeout);
      auto [ec, n] = co_await net::async_write(client_, net::buffer(kContinue), kNoThrow);
      continue_sent = true;
      if (ec) {
        pool->discard(std::move(acquired.conn));
        ex_.error = "client_closed";
        co_return Outcome::close;
      }
    }
    bool buffered_sent = buffered.empty();
    BodyError body_error = BodyError::none;
    for (;;) {
      const char* piece = nullptr;
      std::size_t piece_size = 0;
      if (!buffered_sent) {
        piece = buffered.data();
        piece_size = buffered.size();
        buffered_sent = true;
      } else if (!body.done) {
        const std::size_t got = co_await read_body_piece(rt, body, relay.data(), kRelayChunk, body_error);
        if (body_error != BodyError::none) {
          client_failed = true;
          break;
        }
        if (got == 0 && !body.done) continue;  // only framing was parsed
        piece = relay.data();
        piece_size = got;
      }
      const auto bufs = sr.next(piece, piece_size, body.done && buffered_sent);
      if (!bufs.empty()) {
        conn.stream.arm(up_cfg.timeout);
        auto [ec, n] = co_await net::async_write(conn.stream, bufs, kNoThrow);
        if (ec) {
          upstream_failed = true;
          upstream_ec = ec;
          break;
        }
      }
      if (sr.done()) break;
    }
    if (client_failed) {
      pool->discard(std::move(acquired.conn));
      co_return co_await fail_body(body_error);
    }

    // --- Read the response head (interim 1xx responses are dropped).
    bool got_any_byte = false;
    bool timed_out = false;
    if (!upstream_failed) {
      const http1::HeadLimits up_limits{kUpstreamHeadLimit, kUpstreamHeadLimit, 1000};
      for (;;) {
        conn.buffer.max_size(2 * kUpstreamHeadLimit + kReadChunk);
        rscan = http1::scan_response_head(view_of(conn.buffer), up_limits, &res_fields_);
        if (rscan.verdict == http1::HeadVerdict::ok) {
          if (rscan.status >= 100 && rscan.status < 200 && rscan.status != 101) {
            conn.buffer.consume(rscan.head_bytes);  // 100 / 103: interim, not forwarded
            continue;
          }
          break;
        }
        if (rscan.verdict != http1::HeadVerdict::incomplete) break;
        if (conn.buffer.size() >= conn.buffer.max_size()) {
          rscan.verdict = http1::HeadVerdict::too_large;
          break;
        }
        conn.stream.arm(up_cfg.timeout);
        auto [ec, n] = co_await conn.stream.async_read_some(
            conn.buffer.prepare(std::min(kReadChunk, conn.buffer.max_size() - conn.buffer.size())),
            kNoThrow);
        if (ec) {
          upstream_failed = true;
          upstream_ec = ec;
          timed_out = conn.stream.timed_out();
          break;
        }
        got_any_byte = true;
        conn.buffer.commit(n);
      }
    }
    if (upstream_failed) {
      const bool stale = !fresh_only && acquired.reused && !got_any_byte && !timed_out && !has_body && idempotent;
      pool->discard(std::move(acquired.conn));
      if (stale) {
        fresh_only = true;
        obs::bump(uc.retries);
        continue;
      }
      if (!timed_out && !got_any_byte && upstream_ec.category() == net::error::get_ssl_category()) {
        // A TLS alert instead of a response: the upstream refused the session after the
        // handshake (a TLS 1.3 server checks the client certificate then).
        worker_.shared().metrics.tls.upstream_failed(up_cfg.name, "protocol");
        update_pool_gauges();
        cluster.record_failure(*pool->endpoint(), now_ns);
        fail_on("tls_protocol_error");
        co_return co_await reply_and_finish(rt, core::GatewayError::upstream_tls_error, has_body || !keep_alive);
      }
      count_failure(timed_out ? obs::UpstreamFailure::timeout : obs::UpstreamFailure::reset);
      if (!timed_out) {
        cluster.record_failure(*pool->endpoint(), now_ns);
        fail_on("connection_terminated");
        if (!got_any_byte && retry_cfg.on_reset && reset_retryable() &&
            retry_elsewhere(cluster.counters.retries_reset))
          continue;
      } else {
        fail_on("http_response_timeout");
      }
      co_return co_await reply_and_finish(rt, timed_out ? core::GatewayError::upstream_timeout : core::GatewayError::upstream_down, has_body || !keep_alive);
    }
    if (rscan.verdict != http1::HeadVerdict::ok) {
      pool->discard(std::move(acquired.conn));
      count_failure(obs::UpstreamFailure::bad_response);
      ex_.error = "bad_response";
      fail_on("http_protocol_error");
      co_return co_await reply_and_finish(rt, core::GatewayError::upstream_down, has_body || !keep_alive);
    }
    break;
  }
  // Passive outlier detection sees the answer: 502/503/504 count against the endpoint.
  if (rscan.status == 502 || rscan.status == 503 || rscan.status == 504)
    cluster.record_failure(*pool->endpoint(), now_ns);
  else upstream::Cluster::record_success(*pool->endpoint());
  auto& conn = *acquired.conn;
  auto& route_counters = snapshot_->route_counters(ex_.route);
  route_counters.upstream_duration.observe(
      std::chrono::duration<double>(steady::now() - upstream_started).count());

  // --- The response head, as scanned (no I/O, no field container).
  http1::HeadView res{view_of(conn.buffer).substr(0, rscan.head_bytes), res_fields_};
  const int status = rscan.status;
  ex_.status = status;
  if (status == 101) {
    // A tunnel opens only here: after the upstream agreed to the WebSocket upgrade this request
    // asked for. A 101 we did not ask for, or to another protocol, is a bad response.
    if (ex_.wants_websocket && res.has_token("upgrade", "websocket"))
      co_return co_await open_tunnel(rt, res, rscan, std::move(acquired.conn), *pool);
    pool->discard(std::move(acquired.conn));
    count_failure(obs::UpstreamFailure::bad_response);
    ex_.error = "bad_response";
    co_await local_reply(rt, core::GatewayError::upstream_down, true);
    co_return Outcome::close;
  }
  const bool no_body = is_head || status == 204 || status == 304;
  conn.check_on_reuse = no_body;  // a body the upstream sends anyway would arrive after this head
  const bool upstream_chunked = rscan.chunked;
  const bool upstream_has_length = rscan.has_content_length;
  // A body that ends when the upstream closes (no length, not chunked) leaves nothing to reuse.
  const bool upstream_keep_alive =
      (no_body || upstream_chunked || upstream_has_length) &&
      (rscan.version_minor == 1 ? !res.has_token("connection", "close")
                                : res.has_token("connection", "keep-alive"));

  // Content-Length bodies are relayed as raw bytes, without a parser: the bytes buffered behind
  // the head first, then reads of at most what is left (nothing past the body is ever read, so
  // an over-long response is detected by the pool). Chunked and close-delimited bodies go
  // through Beast's parser, given a synthetic head, which checks the chunk framing.
  const bool raw_body = !no_body && !upstream_chunked && upstream_has_length;
  std::uint64_t raw_left = raw_body ? rscan.content_length : 0;
  std::optional<http::response_parser<http::buffer_body>> rp;
  if (!no_body && !raw_body) {
    static constexpr std::string_view kChunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    static constexpr std::string_view kUntilCloseHead = "HTTP/1.1 200 OK\r\n\r\n";
    rp.emplace();
    rp->body_limit(boost::none);
    boost::system::error_code ec;
    rp->put(net::buffer(upstream_chunked ? kChunkedHead : kUntilCloseHead), ec);
  }
  const auto body_done = [&] { return no_body || (raw_body ? raw_left == 0 : rp->is_done()); };

  // Rate-limit information the upstream reported (headers), for merging (spec §6).
  ex_.upstream_limit = ratelimit::parse_upstream_headers(
      res.get(core::hdr::kRateLimitLimit), res.get(core::hdr::kRateLimitRemaining),
      res.get(core::hdr::kRateLimitReset), res.get("retry-after"),
      worker_.shared().clock.now_ns() / 1'000'000'000);

  // --- Error responses are buffered (up to the cap) and rewritten before anything is sent.
  const auto& popts = cfg.problem;
  const bool rewrite = status >= 400 && route.problem.normalize && !no_body;
  // Spec §1: an error body announced over the cap is not read at all; the client gets the
  // status-only problem and the upstream connection is closed rather than drained.
  const bool declared_oversize = rewrite && upstream_has_length && rscan.content_length > popts.max_error_body;
  bool chunk_out = false;
  if (!no_body && (upstream_chunked || !upstream_has_length)) {
    // Unknown length: chunk it for HTTP/1.1 clients; a 1.0 client reads until close.
    if (scan.version_minor == 1) chunk_out = true;
    else keep_alive = false;
  }
  if (rewrite) {
    // The body reads below may move the connection buffer: keep a copy of this (small) head.
    error_head_.assign(res.bytes);
    res.bytes = error_head_;
  } else {
    build_response_head(rt, res, rscan, false, chunk_out, keep_alive);
  }
  conn.buffer.consume(rscan.head_bytes);
  // Large bodies: let each read take up to a relay chunk, instead of many 8 KiB reads.
  if (!no_body && (!upstream_has_length || rscan.content_length > kReadChunk))
    conn.buffer.reserve(std::min(kRelayChunk, conn.buffer.max_size()));

  std::size_t prefix = 0;  // bytes of ex_.error_body already read, to relay first
  bool rewritten = false;
  if (rewrite) {
    auto& err_body = ex_.error_body;
    err_body.clear();
    const std::size_t cap = popts.max_error_body;
    bool failed = false;
    while (!declared_oversize && !body_done() && err_body.size() <= cap) {
      const std::size_t old = err_body.size();
      // Size each read by what is announced (or a small step): zero-filling a 64 KiB string
      // for a 200-byte error body would cost more than the rewrite itself.
      const std::size_t want = raw_body ? static_cast<std::size_t>(raw_left) + 1 : kReadChunk;
      const std::size_t room = std::min({kRelayChunk, cap + 1 - old, std::max<std::size_t>(want, 1)});
      err_body.resize(old + room);
      if (raw_body) {
        boost::system::error_code ec;
        const std::size_t got = co_await read_bounded(conn.stream, conn.buffer, up_cfg.timeout,
                                                      err_body.data() + old, room, raw_left, ec);
        err_body.resize(old + got);
        if (got == 0) {
          failed = true;
          break;
        }
        continue;
      }
      rp->get().body().data = err_body.data() + old;
      rp->get().body().size = room;
      conn.stream.arm(up_cfg.timeout);
      auto [ec, n] = co_await http::async_read_some(conn.stream, conn.buffer, *rp, kNoThrow);
      if (ec == http::error::need_buffer) ec = {};
      err_body.resize(old + (room - rp->get().body().size));
      if (ec) {
        failed = true;
        break;
      }
    }
    if (failed) {
      pool->discard(std::move(acquired.conn));
      count_failure(obs::UpstreamFailure::reset);
      ex_.error = "bad_response";
      co_return co_await reply_and_finish(rt, core::GatewayError::upstream_down, has_body || !keep_alive);
    }
    // Not complete (over the cap, announced or found while reading): the oversize problem, and
    // the rest of the body is never read (the connection is discarded below, as body_done() is
    // false).
    rewritten = rewrite_error(rt, res, status, !declared_oversize && body_done(), route_counters);
    if (!rewritten) prefix = err_body.size();  // relayed as it came
    build_response_head(rt, res, rscan, rewritten, !rewritten && chunk_out, keep_alive);
  }

  // --- Relay the body (or the rewritten one). The head goes out with the first piece.
  http1::MessageWriter rsr(down_head_, no_body                  ? http1::MessageWriter::Framing::none
                                : !rewritten && chunk_out ? http1::MessageWriter::Framing::chunked
                                                          : http1::MessageWriter::Framing::length);
  bool upstream_ok = true;
  bool client_ok = true;
  std::size_t prefix_sent = 0;
  for (;;) {
    const char* piece = nullptr;
    std::size_t piece_size = 0;
    bool last = true;
    if (rewritten) {
      piece = ex_.normalized.body.data();
      piece_size = ex_.normalized.body.size();
    } else if (prefix_sent < prefix) {
      piece = ex_.error_body.data();
      piece_size = prefix;
      prefix_sent = prefix;
      last = body_done();
    } else if (raw_body && raw_left > 0) {
      // A large Content-Length body, with the head and any buffered bytes already out: the
      // kernel moves the rest socket to socket (splice), no copy through this process. With no
      // pipe to be had (descriptors), or a small rest, it is read and written here. Through TLS
      // on either side the kernel cannot move the bytes (they are encrypted differently on each
      // side): those are copied through the relay buffer, so memory stays constant.
      http1::Pipe pipe;
      if (raw_left >= kSpliceMin && conn.buffer.size() == 0 && rsr.head_sent() && !conn.stream.is_tls() &&
          !client_.is_tls())
        pipe = worker_.pipes().take();
      if (pipe.valid()) {
        const http1::SpliceOutcome r = co_await http1::splice_body(conn.stream, up_cfg.timeout, client_,
                                                     cfg.limits.write_timeout, pipe, raw_left);
        worker_.pipes().give(std::move(pipe));
        ex_.bytes_out += r.bytes_out;
        if (!r.from_ok) {
          upstream_ok = false;
          break;
        }
        if (!r.to_ok) {
          client_ok = false;
          break;
        }
        last = true;  // raw_left is 0: the message is complete (nothing left to frame)
      } else {
        boost::system::error_code ec;
        piece_size = co_await read_bounded(conn.stream, conn.buffer, up_cfg.timeout, relay.data(),
                                           kRelayChunk, raw_left, ec);
        if (piece_size == 0) {
          upstream_ok = false;
          break;
        }
        piece = relay.data();
        last = raw_left == 0;
      }
    } else if (!body_done()) {
      rp->get().body().data = relay.data();
      rp->get().body().size = kRelayChunk;
      conn.stream.arm(up_cfg.timeout);
      auto [ec, n] = co_await http::async_read_some(conn.stream, conn.buffer, *rp, kNoThrow);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        upstream_ok = false;
        break;
      }
      const std::size_t got = kRelayChunk - rp->get().body().size;
      if (got == 0 && !rp->is_done()) continue;
      piece = relay.data();
      piece_size = got;
      last = rp->is_done();
    }
    const auto bufs = rsr.next(piece, piece_size, last);
    if (!bufs.empty()) {
      client_.arm(cfg.limits.write_timeout);
      auto [ec, n] = co_await net::async_write(client_, bufs, kNoThrow);
      ex_.bytes_out += n;
      if (ec) {
        client_ok = false;
        break;
      }
    }
    if (rsr.done()) break;
  }
  client_.disarm();

  if (!upstream_ok) {
    pool->discard(std::move(acquired.conn));
    count_failure(obs::UpstreamFailure::reset);
    ex_.error = "upstream_reset";
    if (!rsr.head_sent()) {
      // Nothing reached the client yet: a clean 502 is still honest.
      co_await local_reply(rt, core::GatewayError::upstream_down, true);
    }
    co_return Outcome::close;  // never fabricate a complete message after the status line
  }
  if (!client_ok) {
    ex_.error = "client_closed";
    if (body_done() && upstream_keep_alive) pool->release(std::move(acquired.conn));
    else pool->discard(std::move(acquired.conn));
    co_return Outcome::close;
  }
  // A 204 that declared a body, or a 204/304 with Transfer-Encoding, broke framing: whatever it
  // meant to send may still arrive and would be read as the next request's response.
  const bool declared_bodyless_body =
      (status == 204 && (upstream_chunked || (upstream_has_length && rscan.content_length != 0))) ||
      (status == 304 && upstream_chunked);
  if (body_done() && upstream_keep_alive && body.done && !declared_bodyless_body)
    pool->release(std::move(acquired.conn));
  else pool->discard(std::move(acquired.conn));
  update_pool_gauges();
  co_return keep_alive ? Outcome::keep_alive : Outcome::close;
}

}  // namespace problemgate::proxy
