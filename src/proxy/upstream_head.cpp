#include "proxy/session_internal.hpp"

namespace problemgate::proxy {

// The upstream request head, written straight from the client's: its fields in order, minus
// hop-by-hop ones and those this proxy sets.
void Session::build_upstream_head(const Runtime& rt, const http1::HeadScan& scan,
                                  const http1::HeadView& req) {
  const auto& route = *ex_.route;
  const auto& cfg = rt.config;
  const auto& up_cfg = cfg.upstreams[route.upstream_index];
  const std::string_view original_host = request_host_;
  const bool rewrite_host =
      route.host_header == config::Route::HostHeader::upstream || original_host.empty();
  up_head_.clear();
  up_head_.append(req.bytes.substr(0, scan.method_len));
  up_head_.push_back(' ');
  // Origin-form, on the normalized path that was routed: the upstream sees what was matched.
  if (route.strip_prefix && route.prefix != "/")
    routing::append_upstream_target(route, ex_.path, up_head_);
  else
    up_head_.append(ex_.path);
  up_head_.append(query_);
  up_head_.append(" HTTP/1.1\r\n");
  skip_.clear();
  skip_.add_hop_by_hop(req);
  for (std::string_view n :
       {std::string_view("expect"), std::string_view("content-length"), core::hdr::kForwardedFor,
        core::hdr::kForwardedProto, core::hdr::kForwardedHost})
    skip_.add(n);
  skip_.add(cfg.request_id.header);
  // Ours replaces the client's traceparent (our span becomes the parent); a tracestate goes on
  // only with the trace it belongs to.
  skip_.add("traceparent");
  if (!ex_.trace_continued) skip_.add("tracestate");
  if (rewrite_host || absolute_form_) skip_.add("host");
  http1::append_fields_except(req, skip_, up_head_);
  // The one upgrade that is passed on (hop-by-hop fields are rewritten, not relayed): the
  // upstream may answer 101, and only then does the connection become a tunnel.
  if (ex_.wants_websocket) {
    http1::append_field(up_head_, "Connection", "upgrade");
    http1::append_field(up_head_, "Upgrade", "websocket");
  }
  // A proxy forwarding an absolute-form request sends the target's authority as Host, never
  // the Host field it received (RFC 9112 §3.2.2).
  if (absolute_form_ && !rewrite_host) http1::append_field(up_head_, "Host", original_host);
  // An HTTP/1.0 request may come without Host; it goes upstream as HTTP/1.1, which requires
  // one (RFC 9112 §3.2), so it gets the upstream's authority.
  if (rewrite_host) {
    scratch_.assign(up_cfg.host);
    if (up_cfg.port != 80) {
      scratch_.push_back(':');
      scratch_.append(std::to_string(up_cfg.port));
    }
    http1::append_field(up_head_, "Host", scratch_);
  }
  scratch_.assign(ex_.forwarded_for);  // every X-Forwarded-For line received (handle())
  if (!scratch_.empty()) scratch_ += ", ";
  scratch_ += peer_ip_;
  http1::append_field(up_head_, core::hdr::kForwardedFor, scratch_);
  http1::append_field(up_head_, core::hdr::kForwardedProto, client_.is_tls() ? "https" : "http");
  if (!original_host.empty())
    http1::append_field(up_head_, core::hdr::kForwardedHost, original_host);
  http1::append_field(up_head_, cfg.request_id.header, ex_.request_id);
  if (ex_.has_trace) {
    char tp[55];
    std::memcpy(tp, "00-", 3);
    std::memcpy(tp + 3, ex_.trace_id.data(), 32);
    tp[35] = '-';
    std::memcpy(tp + 36, ex_.span_id.data(), 16);
    tp[52] = '-';
    static constexpr char kHex[] = "0123456789abcdef";
    tp[53] = kHex[ex_.trace_flags >> 4];
    tp[54] = kHex[ex_.trace_flags & 0xF];
    http1::append_field(up_head_, "traceparent", std::string_view(tp, sizeof tp));
  }
  if (scan.chunked) {
    http1::append_field(up_head_, "Transfer-Encoding", "chunked");
  } else if (scan.has_content_length) {
    char len[24];
    const auto r = std::to_chars(len, len + sizeof len, scan.content_length);
    http1::append_field(up_head_, "Content-Length",
                        std::string_view(len, static_cast<std::size_t>(r.ptr - len)));
  }
  up_head_.append("\r\n", 2);
  skip_.clear();
}

void Session::build_response_head(const Runtime& rt, const http1::HeadView& res,
                                  const http1::HeadScan& rscan, bool rewritten, bool chunk_out,
                                  bool keep_alive) {
  const auto& cfg = rt.config;
  rate_limit_fields(rt);
  down_head_.clear();
  down_head_.append("HTTP/1.1 ", 9);
  down_head_.append(res.bytes.substr(9, 3));  // the status code, as scanned
  down_head_.push_back(' ');
  const std::string_view reason = res.bytes.substr(rscan.reason_off, rscan.reason_len);
  if (!reason.empty())
    down_head_.append(reason);
  else
    down_head_.append(http::obsolete_reason(static_cast<http::status>(rscan.status)));
  down_head_.append("\r\n", 2);
  skip_.clear();
  skip_.add_hop_by_hop(res);
  skip_.add(cfg.request_id.header);
  skip_.add("content-length");  // framing is always written from what was scanned, below
  for (const auto& f : rl_fields_) skip_.add(f.name);
  if (rewritten) {
    for (std::string_view n : {"content-type", "content-encoding", "etag", "last-modified",
                               "content-md5", "digest", "content-digest", "repr-digest"})
      skip_.add(n);
  }
  http1::append_fields_except(res, skip_, down_head_);
  skip_.clear();
  if (rewritten) {
    http1::append_field(down_head_, "Content-Type", ex_.normalized.content_type);
    char len[24];
    const auto r = std::to_chars(len, len + sizeof len, ex_.normalized.body.size());
    http1::append_field(down_head_, "Content-Length",
                        std::string_view(len, static_cast<std::size_t>(r.ptr - len)));
  } else if (chunk_out) {
    http1::append_field(down_head_, "Transfer-Encoding", "chunked");
  } else if (rscan.has_content_length) {
    char len[24];
    const auto r = std::to_chars(len, len + sizeof len, rscan.content_length);
    http1::append_field(down_head_, "Content-Length",
                        std::string_view(len, static_cast<std::size_t>(r.ptr - len)));
  }
  http1::append_field(down_head_, cfg.request_id.header, ex_.request_id);
  for (const auto& f : rl_fields_) http1::append_field(down_head_, f.name, f.value);
  // keep_alive was decided when the request head arrived; a drain that began since closes too.
  if (!keep_alive || worker_.draining()) {
    http1::append_field(down_head_, "Connection", "close");
    response_closes_ = true;
  }
  down_head_.append("\r\n", 2);
}

void Session::build_switching_head(const Runtime& rt, const http1::HeadView& res,
                                   const http1::HeadScan& rscan) {
  const auto& cfg = rt.config;
  rate_limit_fields(rt);
  down_head_.assign("HTTP/1.1 101 ");
  const std::string_view reason = res.bytes.substr(rscan.reason_off, rscan.reason_len);
  down_head_.append(reason.empty() ? std::string_view("Switching Protocols") : reason);
  down_head_.append("\r\n", 2);
  skip_.clear();
  skip_.add_hop_by_hop(res);
  skip_.add(cfg.request_id.header);
  skip_.add("content-length");  // a 101 has no content; what follows it is the new protocol
  for (const auto& f : rl_fields_) skip_.add(f.name);
  http1::append_fields_except(res, skip_, down_head_);
  skip_.clear();
  http1::append_field(down_head_, "Connection", "upgrade");
  http1::append_field(down_head_, "Upgrade", "websocket");
  http1::append_field(down_head_, cfg.request_id.header, ex_.request_id);
  for (const auto& f : rl_fields_) http1::append_field(down_head_, f.name, f.value);
  down_head_.append("\r\n", 2);
}

void Session::rate_limit_fields(const Runtime& rt) {
  rl_fields_.clear();
  const ratelimit::Decision* gw = ex_.decision ? &*ex_.decision : nullptr;
  const ratelimit::UpstreamLimit* up = ex_.upstream_limit.any() ? &ex_.upstream_limit : nullptr;
  if (!gw && !up) return;
  const auto* route = ex_.route;
  std::int64_t window_s = 0;
  if (route) {
    const auto& policy = route->rate_limit;  // the effective policy (loader applied the default)
    if (policy) window_s = std::chrono::duration_cast<std::chrono::seconds>(policy->window).count();
  }
  ratelimit::build_headers(
      gw, up, route ? std::string_view(route->name) : std::string_view("default"), window_s,
      rt.config.rate_limit_headers, worker_.shared().clock.now_ns() / 1'000'000'000, rl_fields_);
}

void Session::set_rate_limit_headers(const Runtime& rt, http::fields& f) {
  rate_limit_fields(rt);
  for (const auto& h : rl_fields_) f.set(h.name, h.value);
}

}  // namespace problemgate::proxy
