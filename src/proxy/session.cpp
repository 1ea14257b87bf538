#include "proxy/session.hpp"
#include "proxy/session_internal.hpp"

namespace problemgate::proxy {

net::awaitable<void> Session::run() {
  {
    boost::system::error_code ec;
    auto ep = client_.socket().remote_endpoint(ec);
    if (!ec) peer_ip_ = ep.address().to_string();
    client_.socket().set_option(tcp::no_delay(true), ec);
  }
  if (listener_.tls && !co_await tls_handshake()) {
    boost::system::error_code ec;
    client_.socket().close(ec);
    co_return;
  }
  for (;;) {
    // Each request takes the newest snapshot and holds it until it is done (hot reload): the
    // runtime, pools and counters it uses outlive a reload while it is suspended.
    std::shared_ptr<const WorkerSnapshot> snap = worker_.snapshot();
    snapshot_ = snap.get();
    http1::HeadScan scan;
    const HeadResult head = co_await read_head(snap->runtime(), scan);
    if (head == HeadResult::closed) break;
    if (head == HeadResult::rejected) {
      co_await local_reply(snap->runtime(), head_error(scan.verdict), true);
      finish_exchange();
      break;
    }
    // A reload while the connection waited for this head: the request goes by the new config
    // (its old pools may be retired, its upstream moved). A pointer compare, no copy, otherwise.
    if (snap != worker_.snapshot()) {
      snap = worker_.snapshot();
      snapshot_ = snap.get();
    }
    const Runtime* rt = &snap->runtime();
    head_pending_ = scan.head_bytes;
    ex_.bytes_in = scan.head_bytes;
    ex_.http_minor = static_cast<std::uint8_t>(scan.version_minor);
    ++served_;
    const bool last = served_ >= rt->config.limits.max_requests_per_connection;
    last_request_ = last;
    response_closes_ = false;
    const Outcome outcome = co_await handle(*rt, scan);
    if (head_pending_) consume_head();  // answered locally
    finish_exchange();
    // A response that said Connection: close (a drain began meanwhile) ends the connection.
    if (outcome == Outcome::close || last || response_closes_) break;
  }
  co_await lingering_close();
}

net::awaitable<Session::HeadResult> Session::read_head(const Runtime& rt, http1::HeadScan& scan) {
  const auto& limits = rt.config.limits;
  const http1::HeadLimits head_limits{limits.max_request_line, limits.max_header_bytes,
                                      limits.max_header_fields};
  bool started = buffer_.size() > 0;
  if (started) {
    client_.arm(limits.header_timeout);
  } else {
    // Draining: a kept-alive connection waits only Worker::kDrainIdleGrace for its next
    // request (one that raced the drain is served, with Connection: close), then closes.
    client_.arm(worker_.draining() && served_ > 0 ? Worker::kDrainIdleGrace : limits.idle_timeout);
    worker_.mark_idle(idle_);
  }
  for (;;) {
    if (buffer_.size() > 0) {
      scan = http1::scan_request_head(view_of(buffer_), head_limits, &req_fields_);
      if (scan.verdict != http1::HeadVerdict::incomplete) break;
    }
    const std::size_t room = buffer_.max_size() - buffer_.size();
    if (room == 0) {
      scan.verdict = http1::HeadVerdict::too_large;
      break;
    }
    if (buffer_.max_size() < head_limits.max_line + head_limits.max_bytes + kReadChunk)
      buffer_.max_size(head_limits.max_line + head_limits.max_bytes + kReadChunk);
    auto [ec, n] = co_await client_.async_read_some(
        buffer_.prepare(std::min(kReadChunk, buffer_.max_size() - buffer_.size())), kNoThrow);
    if (ec) {
      Worker::mark_busy(idle_);
      // A deadline that passes mid-head earns a 408; an idle or closed connection just ends.
      if (client_.timed_out() && started) {
        ex_.started = steady::now();
        ex_.time_ms = worker_.shared().clock.now_ms();
        worker_.ids().next(ex_.request_id);
        new_trace();
        co_await local_reply(rt, core::GatewayError::request_timeout, true);
        finish_exchange();
      }
      co_return HeadResult::closed;
    }
    buffer_.commit(n);
    if (!started) {
      started = true;
      Worker::mark_busy(idle_);
      client_.arm(limits.header_timeout);  // absolute head deadline from the first byte
    }
  }
  Worker::mark_busy(idle_);
  client_.disarm();
  ex_.reset();
  ex_.started = steady::now();
  ex_.time_ms = worker_.shared().clock.now_ms();
  if (scan.verdict != http1::HeadVerdict::ok) {
    worker_.ids().next(ex_.request_id);
    new_trace();
    // Keep what can be read of the request line for the log.
    std::string_view head = view_of(buffer_);
    // A TLS ClientHello (a handshake record, 0x16 0x03) on a plain port: no HTTP answer would
    // mean anything to that client; counted and closed.
    if (served_ == 0 && !listener_.tls && head.size() >= 2 && head[0] == '\x16' &&
        head[1] == '\x03') {
      worker_.shared().metrics.tls.handshake_failed(listener_.label, "tls_on_plain_listener");
      ex_.request_id.clear();
      co_return HeadResult::closed;
    }
    const auto sp = head.find(' ');
    if (sp != std::string_view::npos && sp < 32) ex_.method.assign(head.substr(0, sp));
    co_return HeadResult::rejected;
  }
  co_return HeadResult::ok;
}

net::awaitable<Session::Outcome> Session::handle(const Runtime& rt, const http1::HeadScan& scan) {
  const http1::HeadView req{view_of(buffer_).substr(0, scan.head_bytes), req_fields_};
  const auto& cfg = rt.config;
  ex_.method.assign(req.bytes.substr(0, scan.method_len));
  const std::string_view target = req.bytes.substr(scan.target_off, scan.target_len);
  ex_.accept.assign(req.get("accept"));
  ex_.user_agent.assign(req.get("user-agent").substr(0, 256));

  // Request id (spec §5): keep a well-formed one when trusted, else generate.
  {
    const http1::FieldSpan* f = req.find(cfg.request_id.header);
    if (cfg.request_id.trust_incoming && f && core::is_valid_request_id(req.value(*f)))
      ex_.request_id.assign(req.value(*f));
    else
      worker_.ids().next(ex_.request_id);
  }
  // Trace context (W3C): a valid traceparent continues the client's trace with a span of our
  // own; none, an invalid one or several start a new trace (its tracestate is then dropped).
  {
    core::TraceParent tp;
    const FieldSpan* f = req.find("traceparent");
    if (f && req.count("traceparent") == 1 && core::parse_traceparent(req.value(*f), tp)) {
      ex_.trace_id = tp.trace_id;
      ex_.trace_flags = tp.flags;
      ex_.has_trace = true;
      ex_.trace_continued = true;
      worker_.ids().next_span(ex_.span_id.data());
    } else {
      new_trace();
    }
  }
  forwarded_for(req, ex_.forwarded_for);

  const bool has_body = scan.chunked || (scan.has_content_length && scan.content_length > 0);
  // A client that wants to close, or HTTP/1.0, gets Connection: close on the response.
  // The last request allowed on this connection says so (Connection: close) on its response.
  bool keep_alive = scan.version_minor == 1 && !req.has_token("connection", "close") &&
                    !worker_.draining() && !last_request_;

  // Routes and limits are decided on exactly what is forwarded: the normalized path, and for
  // an absolute-form target its authority in place of Host (RFC 9112 §3.2.2).
  const core::TargetParts parts = core::split_request_target(target);
  if (parts.form == core::TargetParts::Form::invalid) {
    ex_.path.assign(path_of(target));  // as received, for the log and `instance`
    co_return co_await reply_and_finish(rt, core::GatewayError::malformed_request,
                                        has_body || !keep_alive);
  }
  absolute_form_ = parts.form == core::TargetParts::Form::absolute;
  request_host_ = absolute_form_ ? parts.authority : req.get("host");
  query_ = parts.query;
  if (cfg.access_log) {
    ex_.host.assign(request_host_.substr(0, 256));
    obs::redact_query(query_, cfg.telemetry.redact_query, ex_.query);
  }
  bool escaped_separator = false;
  if (core::normalize_path(parts.path, ex_.path, escaped_separator) != core::PathVerdict::ok) {
    ex_.path.assign(parts.path);
    co_return co_await reply_and_finish(rt, core::GatewayError::invalid_path,
                                        has_body || !keep_alive);
  }
  ex_.route = rt.routes.match(request_host_, ex_.path);
  if (!ex_.route) {
    co_return co_await reply_and_finish(rt, core::GatewayError::route_not_found,
                                        has_body || !keep_alive);
  }
  if (escaped_separator && ex_.route->escaped_slashes == config::Route::EscapedSlashes::reject) {
    co_return co_await reply_and_finish(rt, core::GatewayError::invalid_path,
                                        has_body || !keep_alive);
  }

  const auto& route = *ex_.route;
  if (asks_for_websocket(scan, req)) {
    if (!route.websocket) {
      obs::bump(snapshot_->route_counters(ex_.route).upgrades_refused);
      co_return co_await reply_and_finish(rt, core::GatewayError::upgrade_refused, !keep_alive);
    }
    ex_.wants_websocket = true;
  }
  const std::uint64_t body_limit = body_limit_of(route, cfg);
  if (body_limit > 0 && scan.has_content_length && scan.content_length > body_limit) {
    // Answered from Content-Length before reading a byte of the body (413 early).
    co_await local_reply(rt, core::GatewayError::payload_too_large, true);
    co_return Outcome::close;
  }

  if (const auto& limiter = rt.limiters[rt.route_index(ex_.route)]) {
    // The loader made route.rate_limit the effective policy (a limiter exists only then).
    const auto& policy = *route.rate_limit;
    const bool by_header = policy.key == config::RateLimitPolicy::Key::header;
    // Every line of the key header goes upstream, which may read any one of them. Keyed on one
    // line, a throwaway key pays while the upstream serves the real one; keyed on all lines
    // joined, each added junk line buys a fresh quota for the same real key. So: refused.
    if (by_header && req.count(policy.header_name) > 1) {
      co_return co_await reply_and_finish(rt, core::GatewayError::duplicate_limit_key,
                                          has_body || !keep_alive);
    }
    const std::string_view header = by_header ? req.get(policy.header_name) : std::string_view{};
    const std::string_view ip =
        policy.key == config::RateLimitPolicy::Key::route ? std::string_view{} : client_ip(rt, req);
    const ratelimit::LimitKey key = ratelimit::request_key(policy, ip, header, route.name);
    if (redis::StoreClient* store = snapshot_->store()) {
      // Shared store: a round trip to Redis. On failure, on_error decides (no decision: the
      // request goes on without rate-limit headers; deny: 503).
      if (!co_await check_shared_limit(rt, *store, key)) {
        co_return co_await reply_and_finish(rt, core::GatewayError::rate_limit_unavailable,
                                            has_body || !keep_alive);
      }
    } else {
      ex_.decision = limiter->check(key);
    }
    if (ex_.decision) {
      auto& rc = snapshot_->route_counters(ex_.route);
      obs::bump(ex_.decision->allowed ? rc.rate_limit_allowed : rc.rate_limit_denied);
      if (!ex_.decision->allowed) {
        co_return co_await reply_and_finish(rt, core::GatewayError::rate_limited,
                                            has_body || !keep_alive);
      }
    }
  }

  // --- Forward: the request to an upstream (forwarder.cpp), the response back
  // (response_relay.cpp).
  fw_.begin(route, rt.config.upstreams[route.upstream_index],
            snapshot_->balancer(route.upstream_index),
            snapshot_->upstream_counters(route.upstream_index));
  start_forwarding(rt, fw_, scan, req);
  std::optional<Outcome> ended;
  if (!fw_.body.done && rt.config.limits.request_buffer_bytes > 0)
    ended = co_await buffer_request_body(rt, fw_);
  if (!ended) ended = co_await exchange_with_upstream(rt, fw_, scan, keep_alive);
  const Outcome outcome = ended ? *ended : co_await relay_response(rt, fw_, scan, keep_alive);
  fw_.end();
  // An upload grew the read buffer or the body buffer: give the memory back while the
  // connection idles.
  if (buffer_.size() == 0 && buffer_.capacity() > kReadChunk) buffer_.shrink_to_fit();
  if (ex_.request_body.capacity() > kReadChunk) {
    ex_.request_body.clear();
    ex_.request_body.shrink_to_fit();
  }
  co_return outcome;
}

net::awaitable<bool> Session::check_shared_limit(const Runtime& rt, redis::StoreClient& store,
                                                 const ratelimit::LimitKey& key) {
  const std::size_t i = rt.route_index(ex_.route);
  const auto r =
      co_await store.check(ex_.route->name, rt.store_gcra[i], ex_.route->rate_limit->window, key);
  if (r.status == redis::StoreClient::Result::Status::decided) {
    ex_.decision = r.decision;
    co_return true;
  }
  co_return rt.config.rate_limit_store.on_error == config::RateLimitStore::OnError::allow;
}

std::string_view Session::client_ip(const Runtime& rt, const http1::HeadView& req) {
  forwarded_for(req, client_ip_);
  client_ip_ = effective_client_ip(peer_ip_, client_ip_, rt.config.trusted_proxies);
  return client_ip_;
}

void Session::finish_exchange() {
  if (ex_.request_id.empty()) return;
  const Runtime* rt = &snapshot_->runtime();
  // A tunnel's request ends when its 101 went out (the latency histogram is not stretched by
  // how long a WebSocket stays open); the tunnel's own life is logged beside it.
  const auto now = steady::now();
  const auto ended = ex_.upgrade.empty() ? now : ex_.tunnel_started;
  const double duration_ms = std::chrono::duration<double, std::milli>(ended - ex_.started).count();
  auto& rc = snapshot_->route_counters(ex_.route);
  if (ex_.status >= 100 && ex_.status <= 599) {
    obs::bump(rc.requests[static_cast<std::size_t>(obs::method_label(ex_.method))]
                         [static_cast<std::size_t>(ex_.status - 100)]);
    rc.duration[obs::status_class_index(ex_.status)].observe(duration_ms / 1000.0);
  }
  obs::bump(rc.request_bytes, ex_.bytes_in);
  obs::bump(rc.response_bytes, ex_.bytes_out);
  if (rt->config.access_log) {
    obs::AccessRecord r;
    r.time_ms = ex_.time_ms;
    r.request_id = ex_.request_id;
    r.trace_id = trace_id();
    r.method = ex_.method;
    r.host = ex_.host;
    r.path = ex_.path;
    r.query = ex_.query;
    if (ex_.http_minor <= 1)
      r.protocol =
          ex_.http_minor == 1 ? std::string_view("HTTP/1.1") : std::string_view("HTTP/1.0");
    r.status = ex_.status;
    if (ex_.route) {
      r.route = ex_.route->name;
      r.upstream = ex_.route->upstream;
      r.endpoints = ex_.endpoints;
    }
    r.upstream_contacted = ex_.upstream_contacted;
    if (ex_.upstream_contacted) {
      // The endpoint tried last is the one that answered (or failed last).
      const std::string_view eps = ex_.endpoints;
      const auto sp = eps.rfind(' ');
      r.upstream_address = sp == std::string_view::npos ? eps : eps.substr(sp + 1);
      r.upstream_status = ex_.upstream_status;
      r.upstream_ms = ex_.upstream_ms;
    }
    r.forwarded_for = ex_.forwarded_for;
    r.duration_ms = duration_ms;
    r.bytes_in = ex_.bytes_in;
    r.bytes_out = ex_.bytes_out;
    r.client = peer_ip_;
    r.user_agent = ex_.user_agent;
    r.error = ex_.error;
    r.client_cert = client_cert_;
    r.tls_version = tls_version_;
    r.dialect = ex_.dialect;
    r.code = ex_.code;
    r.subcode = ex_.subcode;
    r.hidden_detail = ex_.hidden_detail;
    r.detail_cap = rt->config.telemetry.max_logged_detail;
    r.upgrade = ex_.upgrade;
    if (!ex_.upgrade.empty()) {
      r.tunnel_bytes_up = ex_.tunnel_bytes_up;
      r.tunnel_bytes_down = ex_.tunnel_bytes_down;
      r.tunnel_ms = std::chrono::duration<double, std::milli>(now - ex_.tunnel_started).count();
      r.tunnel_close = ex_.tunnel_close;
    }
    worker_.shared().access_log.write(r, worker_.log_scratch());
  }
  ex_.request_id.clear();
}

net::awaitable<bool> Session::tls_handshake() {
  auto& counters = worker_.shared().metrics.tls;
  const config::ListenTls* settings = nullptr;
  tls_ = worker_.snapshot()->runtime().tls_for(listener_.index, listener_.host, listener_.port,
                                               &settings);
  if (!tls_) {  // cannot happen: whether a listener speaks TLS never changes on a reload
    counters.handshake_failed(listener_.label, "no_certificate");
    co_return false;
  }
  auto& stream = client_.start_tls(tls_->context());
  // A silent or slow client is closed at handshake_timeout (the head deadline starts after);
  // while it handshakes it counts as idle, so a drain closes it too.
  client_.arm(settings->handshake_timeout);
  worker_.mark_idle(idle_);
  auto [ec] = co_await stream.async_handshake(net::ssl::stream_base::server, kNoThrow);
  Worker::mark_busy(idle_);
  const bool timed_out = client_.timed_out();
  client_.disarm();
  if (ec) {
    counters.handshake_failed(listener_.label, http1::handshake_failure_reason(ec, timed_out));
    spdlog::debug("tls handshake from {} on {} failed: {}", peer_ip_, listener_.label,
                  ec.message());
    co_return false;
  }
  counters.handshake_ok(listener_.label, SSL_session_reused(stream.native_handle()) == 1);
  client_cert_ = http1::peer_subject(stream);
  tls_version_ = SSL_get_version(stream.native_handle());  // a static string
  co_return true;
}

net::awaitable<void> Session::lingering_close() {
  if (auto* tls = client_.tls()) {
    // TLS: our close_notify, then a bounded wait for the client's (or its close), which also
    // lets unread request bytes drain before the socket closes.
    client_.arm(kLingerTimeout);
    co_await tls->async_shutdown(kNoThrow);  // any outcome ends the connection
    client_.disarm();
    boost::system::error_code ec;
    client_.socket().close(ec);
    co_return;
  }
  // Half-close, then read and discard what the client still sends for a moment, so our last
  // response is not destroyed by a RST for unread request bytes (nginx's lingering close).
  auto& s = client_.socket();
  boost::system::error_code ec;
  s.shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    client_.arm(kLingerTimeout);
    std::size_t discarded = 0;
    char sink[4096];
    while (discarded < kLingerBytes) {
      auto [rec, n] = co_await s.async_read_some(net::buffer(sink), kNoThrow);
      if (rec) break;
      discarded += n;
    }
    client_.disarm();
  }
  s.close(ec);
}

net::awaitable<void> run_session(Worker& worker, tcp::socket socket, const ListenerInfo& listener) {
  Session session(worker, std::move(socket), listener);
  co_await session.run();
}

}  // namespace problemgate::proxy
