#include "proxy/session_internal.hpp"

namespace problemgate::proxy {

net::awaitable<void> Session::local_reply(const Runtime& rt, core::GatewayError e, bool close) {
  const auto& cfg = rt.config;
  problem::Problem p =
      problem::make_gateway_problem(e, ex_.path, ex_.request_id, cfg.problem, trace_id());
  if (e == core::GatewayError::rate_limited && ex_.decision)
    p.retry_after = ex_.decision->retry_after_s;
  std::string body;
  problem::write_problem(p, body);
  http::response<http::string_body> res{static_cast<http::status>(p.status), 11};
  res.set(http::field::content_type, problem::negotiate_content_type(ex_.accept));
  res.set(cfg.request_id.header, ex_.request_id);
  scratch_.assign(core::hdr::kProxyName);
  scratch_ += "; error=";
  scratch_ += ex_.proxy_error.empty() ? core::gateway_error_info(e).proxy_status : ex_.proxy_error;
  if (!ex_.next_hop.empty()) {
    // An sf-string: an address starts with a digit or '[', which a token may not.
    scratch_ += "; next-hop=\"";
    scratch_ += ex_.next_hop;
    scratch_ += '"';
  }
  res.set(core::hdr::kProxyStatus, scratch_);
  ex_.upstream_limit = {};
  set_rate_limit_headers(rt, res);
  if (p.retry_after) res.set(http::field::retry_after, std::to_string(*p.retry_after));
  const bool keep_alive = !close && !worker_.draining();
  res.keep_alive(keep_alive);
  if (!keep_alive) response_closes_ = true;
  res.body() = std::move(body);
  res.prepare_payload();
  // HEAD: the head a GET would get (Content-Length included), never the body (RFC 9110 §9.3.2).
  if (ex_.method == "HEAD") res.body().clear();
  ex_.status = p.status;
  ex_.error = core::gateway_error_info(e).name;
  ex_.code = p.code;
  ex_.subcode = p.subcode;
  down_head_.clear();
  http1::append_response_head(res, down_head_);
  const std::array<net::const_buffer, 2> bufs{net::buffer(down_head_), net::buffer(res.body())};
  client_.arm(cfg.limits.write_timeout);
  auto [ec, n] = co_await net::async_write(client_, bufs, kNoThrow);
  client_.disarm();
  ex_.bytes_out += n;
}

}  // namespace problemgate::proxy
