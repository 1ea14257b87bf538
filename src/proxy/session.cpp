#include "proxy/session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <charconv>
#include <cstring>
#include <optional>

#include "problemgate/core/headers.hpp"
#include "problemgate/core/request_id.hpp"
#include "problemgate/core/request_target.hpp"
#include "problemgate/problem/problem.hpp"
#include "problemgate/ratelimit/headers.hpp"
#include "proxy/client_stream.hpp"
#include "proxy/client_address.hpp"
#include "proxy/head_scanner.hpp"
#include "proxy/head_view.hpp"
#include "proxy/message_writer.hpp"
#include "proxy/splice_relay.hpp"
#include "proxy/worker.hpp"

namespace problemgate::proxy {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

/// Where a request body comes from: Content-Length bytes (raw) or Beast's chunk decoder.
struct RequestBody {
  std::optional<http::request_parser<http::buffer_body>> chunks;
  std::uint64_t left = 0;  ///< Content-Length bytes still to read
  bool done = true;
};

/// Why reading a request body stopped early.
enum class BodyError { none, client_closed, timeout, too_large, malformed };

/// Up to `cap` bytes of a Content-Length body into `dst`, never more than `left` (which it
/// decrements): the bytes already buffered behind the head first, else one read under
/// `timeout`. Nothing past the body is ever read. Used for both directions. 0 with `ec` set on
/// a failed read (the socket's timed_out() tells a deadline from a close).
net::awaitable<std::size_t> read_bounded(upstream::DeadlineSocket& s, beast::flat_buffer& buffer,
                                         config::Duration timeout, char* dst, std::size_t cap,
                                         std::uint64_t& left, boost::system::error_code& ec) {
  ec = {};
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(cap, left));
  if (want == 0) co_return 0;
  std::size_t got = 0;
  if (buffer.size() > 0) {
    got = std::min(want, buffer.size());
    std::memcpy(dst, buffer.data().data(), got);
    buffer.consume(got);
  } else {
    s.arm(timeout);
    auto [rec, n] = co_await s.socket().async_read_some(net::buffer(dst, want), kNoThrow);
    if (rec) {
      ec = rec;
      co_return 0;
    }
    got = n;
  }
  left -= got;
  co_return got;
}

/// The body limit of a route: its own, else the global one (0 = none).
std::uint64_t body_limit_of(const config::Route& route, const config::Config& cfg) {
  return route.max_body_bytes ? *route.max_body_bytes : cfg.limits.max_body_bytes;
}

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

constexpr std::size_t kRelayChunk = 64 * 1024;
/// Content-Length bodies with at least this much left after the first read are spliced
/// (splice_relay.hpp); below it, one read and one write cost less than the pipe round trip.
constexpr std::uint64_t kSpliceMin = 64 * 1024;
constexpr std::size_t kReadChunk = 8 * 1024;
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 256 * 1024;
constexpr std::size_t kUpstreamHeadLimit = 64 * 1024;

std::string_view view_of(const beast::flat_buffer& b) {
  auto d = b.data();
  return {static_cast<const char*>(d.data()), d.size()};
}

std::string_view path_of(std::string_view target) {
  const auto q = target.find_first_of("?#");
  return q == std::string_view::npos ? target : target.substr(0, q);
}

bool is_idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE" || method == "TRACE";
}

core::GatewayError head_error(HeadVerdict v) {
  switch (v) {
    case HeadVerdict::uri_too_long: return core::GatewayError::uri_too_long;
    case HeadVerdict::too_large: return core::GatewayError::headers_too_large;
    case HeadVerdict::not_implemented: return core::GatewayError::not_implemented;
    default: return core::GatewayError::malformed_request;
  }
}

/// Every X-Forwarded-For field line as one list, in order (RFC 9110 §5.3: the same as one
/// comma-joined line); HAProxy, for one, appends its hop as a separate line.
void forwarded_for(const HeadView& head, std::string& out) {
  out.clear();
  for (const auto& f : head.fields) {
    if (f.name_len != core::hdr::kForwardedFor.size() || !iequals(head.name(f), core::hdr::kForwardedFor)) continue;
    if (!out.empty()) out += ", ";
    out.append(head.value(f));
  }
}

/// Per-request facts, reused across the requests of a connection (strings keep capacity).
struct Exchange {
  steady::time_point started;
  std::int64_t time_ms = 0;
  std::string request_id;
  std::string path;
  std::string method;
  std::string accept;
  std::string user_agent;
  const config::Route* route = nullptr;
  std::optional<ratelimit::Decision> decision;
  ratelimit::UpstreamLimit upstream_limit;
  int status = 0;
  std::string_view error;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::string_view dialect;
  std::string code;
  std::string subcode;
  std::string hidden_detail;
  std::string error_body;
  std::string request_body;  // the buffered part of the request body (limits.request_buffer_bytes)
  problem::Output normalized;

  void reset() {
    request_id.clear();
    path.clear();
    method.clear();
    accept.clear();
    user_agent.clear();
    route = nullptr;
    decision.reset();
    upstream_limit = {};
    status = 0;
    error = {};
    bytes_in = bytes_out = 0;
    dialect = {};
    code.clear();
    subcode.clear();
    hidden_detail.clear();
  }
};

/// A 64 KiB relay buffer borrowed for the duration of one forward, so idle keep-alive
/// connections hold no body buffer at all.
class RelayBuffer {
public:
  explicit RelayBuffer(Worker& w) : worker_(w), data_(w.take_relay_buffer(kRelayChunk)) {}
  ~RelayBuffer() { worker_.give_relay_buffer(std::move(data_)); }
  RelayBuffer(const RelayBuffer&) = delete;
  RelayBuffer& operator=(const RelayBuffer&) = delete;
  char* data() noexcept { return data_.get(); }

private:
  Worker& worker_;
  std::unique_ptr<char[]> data_;
};

class Session {
public:
  Session(Worker& worker, tcp::socket socket)
      : worker_(worker), client_(std::move(socket)), buffer_(kReadChunk) {}

  net::awaitable<void> run();

private:
  enum class HeadResult { ok, closed, rejected };
  enum class Outcome { keep_alive, close };

  net::awaitable<HeadResult> read_head(const Runtime& rt, HeadScan& scan);
  net::awaitable<Outcome> handle(const Runtime& rt, const HeadScan& scan);
  net::awaitable<Outcome> forward(const Runtime& rt, const HeadScan& scan, const HeadView& req,
                                  bool keep_alive);
  net::awaitable<void> local_reply(const Runtime& rt, core::GatewayError e, bool close);
  /// A local reply that ends the exchange: the connection closes when `close` (an unread
  /// body, or the client asked), else it stays open for the next request.
  net::awaitable<Outcome> reply_and_finish(const Runtime& rt, core::GatewayError e, bool close) {
    co_await local_reply(rt, e, close);
    co_return close ? Outcome::close : Outcome::keep_alive;
  }
  net::awaitable<void> lingering_close();
  /// Up to `cap` bytes of the request body into `dst` (0 with `body.done` false: only chunk
  /// framing was read). Sets `err` when the body cannot be read to its end.
  net::awaitable<std::size_t> read_body_piece(const Runtime& rt, RequestBody& body, char* dst,
                                              std::size_t cap, BodyError& err);
  /// The request head's bytes are done with: drop them from the read buffer (views end here).
  void consume_head() {
    buffer_.consume(head_pending_);
    head_pending_ = 0;
  }
  void finish_exchange();
  /// The rate-limit fields of this exchange's response (spec §6), into rl_fields_.
  void rate_limit_fields(const Runtime& rt);
  void set_rate_limit_headers(const Runtime& rt, http::fields& f);
  /// The response head for the client, from the upstream's head `res`, into down_head_.
  void build_response_head(const Runtime& rt, const HeadView& res, const HeadScan& rscan,
                           bool rewritten, bool chunk_out, bool keep_alive);
  std::string_view client_ip(const Runtime& rt, const HeadView& req);

  Worker& worker_;
  ClientStream client_;
  beast::flat_buffer buffer_;
  Exchange ex_;
  std::string peer_ip_;
  std::string client_ip_;  // per request (trusted proxies may change it)
  std::string scratch_;
  std::string up_head_;    // the upstream request head being sent (kept for a retry)
  std::string down_head_;  // the client response head being sent
  std::string error_head_; // an error response's upstream head, kept while its body is read
  std::vector<FieldSpan> req_fields_;
  std::vector<FieldSpan> res_fields_;
  std::vector<ratelimit::HeaderField> rl_fields_;
  NameSet skip_;
  std::size_t head_pending_ = 0;  // bytes of the current request head still in buffer_
  // Views into the current request head (valid until consume_head()): the authority the
  // request was routed on (absolute-form target's, else Host) and the query as received.
  std::string_view request_host_;
  std::string_view query_;
  bool absolute_form_ = false;
  const WorkerSnapshot* snapshot_ = nullptr;  // the snapshot of the request in progress (kept alive by run())
  IdleClient idle_{client_};  // linked while waiting for the next request (drain closes it)
  bool last_request_ = false;  // max_requests_per_connection reached with this request
  bool response_closes_ = false;  // the response sent for this request said Connection: close
  std::uint32_t served_ = 0;      // requests read on this connection
};

//------------------------------------------------------------------------------

net::awaitable<void> Session::run() {
  {
    boost::system::error_code ec;
    auto ep = client_.socket().remote_endpoint(ec);
    if (!ec) peer_ip_ = ep.address().to_string();
    client_.socket().set_option(tcp::no_delay(true), ec);
  }
  for (;;) {
    // Each request takes the newest snapshot and holds it until it is done (hot reload): the
    // runtime, pools and counters it uses outlive a reload while it is suspended.
    std::shared_ptr<const WorkerSnapshot> snap = worker_.snapshot();
    snapshot_ = snap.get();
    HeadScan scan;
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

net::awaitable<Session::HeadResult> Session::read_head(const Runtime& rt, HeadScan& scan) {
  const auto& limits = rt.config.limits;
  const HeadLimits head_limits{limits.max_request_line, limits.max_header_bytes,
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
      scan = scan_request_head(view_of(buffer_), head_limits, &req_fields_);
      if (scan.verdict != HeadVerdict::incomplete) break;
    }
    const std::size_t room = buffer_.max_size() - buffer_.size();
    if (room == 0) {
      scan.verdict = HeadVerdict::too_large;
      break;
    }
    if (buffer_.max_size() < head_limits.max_line + head_limits.max_bytes + kReadChunk)
      buffer_.max_size(head_limits.max_line + head_limits.max_bytes + kReadChunk);
    auto [ec, n] = co_await client_.socket().async_read_some(
        buffer_.prepare(std::min(kReadChunk, buffer_.max_size() - buffer_.size())), kNoThrow);
    if (ec) {
      Worker::mark_busy(idle_);
      // A deadline that passes mid-head earns a 408; an idle or closed connection just ends.
      if (client_.timed_out() && started) {
        ex_.started = steady::now();
        ex_.time_ms = worker_.shared().clock.now_ms();
        worker_.ids().next(ex_.request_id);
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
  if (scan.verdict != HeadVerdict::ok) {
    worker_.ids().next(ex_.request_id);
    // Keep what can be read of the request line for the log.
    std::string_view head = view_of(buffer_);
    const auto sp = head.find(' ');
    if (sp != std::string_view::npos && sp < 32) ex_.method.assign(head.substr(0, sp));
    co_return HeadResult::rejected;
  }
  co_return HeadResult::ok;
}

net::awaitable<Session::Outcome> Session::handle(const Runtime& rt, const HeadScan& scan) {
  const HeadView req{view_of(buffer_).substr(0, scan.head_bytes), req_fields_};
  const auto& cfg = rt.config;
  ex_.method.assign(req.bytes.substr(0, scan.method_len));
  const std::string_view target = req.bytes.substr(scan.target_off, scan.target_len);
  ex_.path.assign(path_of(target));  // as received, for the log of a refused target
  ex_.accept.assign(req.get("accept"));
  ex_.user_agent.assign(req.get("user-agent").substr(0, 256));

  // Request id (spec §5): keep a well-formed one when trusted, else generate.
  {
    const FieldSpan* f = req.find(cfg.request_id.header);
    if (cfg.request_id.trust_incoming && f && core::is_valid_request_id(req.value(*f)))
      ex_.request_id.assign(req.value(*f));
    else
      worker_.ids().next(ex_.request_id);
  }

  const bool has_body = scan.chunked || (scan.has_content_length && scan.content_length > 0);
  // A client that wants to close, or HTTP/1.0, gets Connection: close on the response.
  // The last request allowed on this connection says so (Connection: close) on its response.
  bool keep_alive = scan.version_minor == 1 && !req.has_token("connection", "close") &&
                    !worker_.draining() && !last_request_;

  // Routes and limits are decided on exactly what is forwarded: the normalized path, and for
  // an absolute-form target its authority in place of Host (RFC 9112 §3.2.2).
  const core::TargetParts parts = core::split_request_target(target);
  if (parts.form == core::TargetParts::Form::invalid) {
    co_return co_await reply_and_finish(rt, core::GatewayError::malformed_request, has_body || !keep_alive);
  }
  absolute_form_ = parts.form == core::TargetParts::Form::absolute;
  request_host_ = absolute_form_ ? parts.authority : req.get("host");
  query_ = parts.query;
  bool escaped_separator = false;
  if (core::normalize_path(parts.path, ex_.path, escaped_separator) != core::PathVerdict::ok) {
    ex_.path.assign(parts.path);
    co_return co_await reply_and_finish(rt, core::GatewayError::invalid_path, has_body || !keep_alive);
  }
  ex_.route = rt.routes.match(request_host_, ex_.path);
  if (!ex_.route) {
    co_return co_await reply_and_finish(rt, core::GatewayError::route_not_found, has_body || !keep_alive);
  }
  if (escaped_separator && ex_.route->escaped_slashes == config::Route::EscapedSlashes::reject) {
    co_return co_await reply_and_finish(rt, core::GatewayError::invalid_path, has_body || !keep_alive);
  }

  const auto& route = *ex_.route;
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
      co_return co_await reply_and_finish(rt, core::GatewayError::duplicate_limit_key, has_body || !keep_alive);
    }
    const std::string_view header = by_header ? req.get(policy.header_name) : std::string_view{};
    const std::string_view ip =
        policy.key == config::RateLimitPolicy::Key::route ? std::string_view{} : client_ip(rt, req);
    ex_.decision = limiter->check(ratelimit::request_key(policy, ip, header, route.name));
    auto& rc = snapshot_->route_counters(ex_.route);
    obs::bump(ex_.decision->allowed ? rc.rate_limit_allowed : rc.rate_limit_denied);
    if (!ex_.decision->allowed) {
      co_return co_await reply_and_finish(rt, core::GatewayError::rate_limited, has_body || !keep_alive);
    }
  }

  const Outcome outcome = co_await forward(rt, scan, req, keep_alive);
  // An upload grew the read buffer or the body buffer: give the memory back while the
  // connection idles.
  if (buffer_.size() == 0 && buffer_.capacity() > kReadChunk) buffer_.shrink_to_fit();
  if (ex_.request_body.capacity() > kReadChunk) {
    ex_.request_body.clear();
    ex_.request_body.shrink_to_fit();
  }
  co_return outcome;
}

std::string_view Session::client_ip(const Runtime& rt, const HeadView& req) {
  forwarded_for(req, client_ip_);
  client_ip_ = effective_client_ip(peer_ip_, client_ip_, rt.config.trusted_proxies);
  return client_ip_;
}

net::awaitable<Session::Outcome> Session::forward(const Runtime& rt, const HeadScan& scan,
                                                  const HeadView& req, bool keep_alive) {
  const auto& route = *ex_.route;
  const auto& cfg = rt.config;
  const auto& up_cfg = cfg.upstreams[route.upstream_index];
  auto& pool = snapshot_->pool(route.upstream_index);
  const bool has_body = scan.chunked || (scan.has_content_length && scan.content_length > 0);
  const bool is_head = ex_.method == "HEAD";
  const bool idempotent = is_idempotent(ex_.method);
  // No 1xx goes to an HTTP/1.0 client (RFC 9110 §15.2): it could not tell it from the answer.
  const bool expect_continue = scan.version_minor == 1 && iequals(req.get("expect"), "100-continue");
  const std::uint64_t body_limit = body_limit_of(route, cfg);

  // --- The upstream request head, written straight from the client's: its fields in order,
  // minus hop-by-hop ones and those this proxy sets.
  {
    const std::string_view original_host = request_host_;
    const bool rewrite_host =
        route.host_header == config::Route::HostHeader::upstream || original_host.empty();
    up_head_.clear();
    up_head_.append(req.bytes.substr(0, scan.method_len));
    up_head_.push_back(' ');
    // Origin-form, on the normalized path that was routed: the upstream sees what was matched.
    if (route.strip_prefix && route.prefix != "/") routing::append_upstream_target(route, ex_.path, up_head_);
    else up_head_.append(ex_.path);
    up_head_.append(query_);
    up_head_.append(" HTTP/1.1\r\n");
    skip_.clear();
    skip_.add_hop_by_hop(req);
    for (std::string_view n : {std::string_view("expect"), std::string_view("content-length"),
                               core::hdr::kForwardedFor, core::hdr::kForwardedProto,
                               core::hdr::kForwardedHost})
      skip_.add(n);
    skip_.add(cfg.request_id.header);
    if (rewrite_host || absolute_form_) skip_.add("host");
    append_fields_except(req, skip_, up_head_);
    // A proxy forwarding an absolute-form request sends the target's authority as Host, never
    // the Host field it received (RFC 9112 §3.2.2).
    if (absolute_form_ && !rewrite_host) append_field(up_head_, "Host", original_host);
    // An HTTP/1.0 request may come without Host; it goes upstream as HTTP/1.1, which requires
    // one (RFC 9112 §3.2), so it gets the upstream's authority.
    if (rewrite_host) {
      scratch_.assign(up_cfg.host);
      if (up_cfg.port != 80) {
        scratch_.push_back(':');
        scratch_.append(std::to_string(up_cfg.port));
      }
      append_field(up_head_, "Host", scratch_);
    }
    forwarded_for(req, scratch_);
    if (!scratch_.empty()) scratch_ += ", ";
    scratch_ += peer_ip_;
    append_field(up_head_, core::hdr::kForwardedFor, scratch_);
    append_field(up_head_, core::hdr::kForwardedProto, "http");
    if (!original_host.empty()) append_field(up_head_, core::hdr::kForwardedHost, original_host);
    append_field(up_head_, cfg.request_id.header, ex_.request_id);
    if (scan.chunked) {
      append_field(up_head_, "Transfer-Encoding", "chunked");
    } else if (scan.has_content_length) {
      char len[24];
      const auto r = std::to_chars(len, len + sizeof len, scan.content_length);
      append_field(up_head_, "Content-Length", std::string_view(len, static_cast<std::size_t>(r.ptr - len)));
    }
    up_head_.append("\r\n", 2);
    skip_.clear();
  }
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
      auto [ec, n] = co_await net::async_write(client_.socket(), net::buffer(kContinue), kNoThrow);
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
  // At most two attempts: a second one only when a reused connection failed before the
  // upstream answered anything and the request had no body (spec: retry only when nothing
  // can have been executed twice by our doing).
  auto& uc = snapshot_->upstream_counters(route.upstream_index);
  auto update_pool_gauges = [&] {
    uc.open.store(pool.open_count(), std::memory_order_relaxed);
    uc.idle.store(pool.idle_count(), std::memory_order_relaxed);
  };
  auto count_failure = [&](obs::UpstreamFailure f) {
    obs::bump(uc.failures[static_cast<std::size_t>(f)]);
    update_pool_gauges();
  };
  const auto upstream_started = steady::now();
  HeadScan rscan;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (attempt > 0) obs::bump(uc.retries);
    acquired = {};
    if (attempt == 0) {
      acquired.conn = pool.take_idle(!has_body && idempotent);  // the retry below covers a close
      acquired.reused = acquired.conn != nullptr;
    }
    if (!acquired.conn) acquired = co_await pool.connect();
    if (acquired.conn) obs::bump(acquired.reused ? uc.reuses : uc.connects);
    if (!acquired.conn) {
      count_failure(acquired.error == upstream::AcquireError::timeout     ? obs::UpstreamFailure::timeout
                    : acquired.error == upstream::AcquireError::exhausted ? obs::UpstreamFailure::exhausted
                                                                          : obs::UpstreamFailure::refused);
      const auto e = acquired.error == upstream::AcquireError::timeout
                         ? core::GatewayError::upstream_timeout
                     : acquired.error == upstream::AcquireError::exhausted
                         ? core::GatewayError::gateway_unavailable
                         : core::GatewayError::upstream_down;
      co_return co_await reply_and_finish(rt, e, has_body || !keep_alive);
    }
    auto& conn = *acquired.conn;
    ++conn.requests;

    // --- Send the request head and stream the body (the head goes out with the first piece).
    MessageWriter sr(up_head_, scan.chunked ? MessageWriter::Framing::chunked
                                            : MessageWriter::Framing::length);
    bool upstream_failed = false;
    bool client_failed = false;
    if (has_body && expect_continue && !continue_sent) {
      // We answer Expect ourselves (as nginx does) once the request is known to go upstream.
      client_.arm(cfg.limits.write_timeout);
      auto [ec, n] = co_await net::async_write(client_.socket(), net::buffer(kContinue), kNoThrow);
      continue_sent = true;
      if (ec) {
        pool.discard(std::move(acquired.conn));
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
        auto [ec, n] = co_await net::async_write(conn.stream.socket(), bufs, kNoThrow);
        if (ec) {
          upstream_failed = true;
          break;
        }
      }
      if (sr.done()) break;
    }
    if (client_failed) {
      pool.discard(std::move(acquired.conn));
      co_return co_await fail_body(body_error);
    }

    // --- Read the response head (interim 1xx responses are dropped).
    bool got_any_byte = false;
    bool timed_out = false;
    if (!upstream_failed) {
      const HeadLimits up_limits{kUpstreamHeadLimit, kUpstreamHeadLimit, 1000};
      for (;;) {
        conn.buffer.max_size(2 * kUpstreamHeadLimit + kReadChunk);
        rscan = scan_response_head(view_of(conn.buffer), up_limits, &res_fields_);
        if (rscan.verdict == HeadVerdict::ok) {
          if (rscan.status >= 100 && rscan.status < 200 && rscan.status != 101) {
            conn.buffer.consume(rscan.head_bytes);  // 100 / 103: interim, not forwarded
            continue;
          }
          break;
        }
        if (rscan.verdict != HeadVerdict::incomplete) break;
        if (conn.buffer.size() >= conn.buffer.max_size()) {
          rscan.verdict = HeadVerdict::too_large;
          break;
        }
        conn.stream.arm(up_cfg.timeout);
        auto [ec, n] = co_await conn.stream.socket().async_read_some(
            conn.buffer.prepare(std::min(kReadChunk, conn.buffer.max_size() - conn.buffer.size())),
            kNoThrow);
        if (ec) {
          upstream_failed = true;
          timed_out = conn.stream.timed_out();
          break;
        }
        got_any_byte = true;
        conn.buffer.commit(n);
      }
    }
    if (upstream_failed) {
      const bool can_retry = attempt == 0 && acquired.reused && !got_any_byte && !timed_out &&
                             !has_body && idempotent;
      pool.discard(std::move(acquired.conn));
      if (can_retry) continue;
      count_failure(timed_out ? obs::UpstreamFailure::timeout : obs::UpstreamFailure::reset);
      co_return co_await reply_and_finish(rt, timed_out ? core::GatewayError::upstream_timeout : core::GatewayError::upstream_down, has_body || !keep_alive);
    }
    if (rscan.verdict != HeadVerdict::ok) {
      pool.discard(std::move(acquired.conn));
      count_failure(obs::UpstreamFailure::bad_response);
      ex_.error = "bad_response";
      co_return co_await reply_and_finish(rt, core::GatewayError::upstream_down, has_body || !keep_alive);
    }
    break;
  }
  auto& conn = *acquired.conn;
  auto& route_counters = snapshot_->route_counters(ex_.route);
  route_counters.upstream_duration.observe(
      std::chrono::duration<double>(steady::now() - upstream_started).count());

  // --- The response head, as scanned (no I/O, no field container).
  HeadView res{view_of(conn.buffer).substr(0, rscan.head_bytes), res_fields_};
  const int status = rscan.status;
  ex_.status = status;
  if (status == 101) {  // we never asked for an upgrade (Upgrade is hop-by-hop): refuse a tunnel
    pool.discard(std::move(acquired.conn));
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
  bool rewrite = status >= 400 && route.problem.normalize && !no_body;
  if (rewrite && upstream_has_length && rscan.content_length > popts.max_error_body) rewrite = false;
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
    while (!body_done() && err_body.size() <= cap) {
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
      auto [ec, n] = co_await http::async_read_some(conn.stream.socket(), conn.buffer, *rp, kNoThrow);
      if (ec == http::error::need_buffer) ec = {};
      err_body.resize(old + (room - rp->get().body().size));
      if (ec) {
        failed = true;
        break;
      }
    }
    if (failed) {
      pool.discard(std::move(acquired.conn));
      count_failure(obs::UpstreamFailure::reset);
      ex_.error = "bad_response";
      co_return co_await reply_and_finish(rt, core::GatewayError::upstream_down, has_body || !keep_alive);
    }
    if (body_done()) {
      problem::Input in;
      in.status = status;
      in.content_type = res.get("content-type");
      in.content_encoding = res.get("content-encoding");
      in.amzn_error_type = res.get(core::hdr::kAmznErrorType);
      // Retry-After as parsed above (HTTP-dates and fractions as whole seconds from now), so the
      // body's retryAfter agrees with the Retry-After header the rate-limit fields carry.
      char retry_buf[24];
      in.retry_after_header = res.get("retry-after");
      if (ex_.upstream_limit.retry_after_s) {
        const auto r = std::to_chars(retry_buf, retry_buf + sizeof retry_buf, *ex_.upstream_limit.retry_after_s);
        in.retry_after_header = std::string_view(retry_buf, static_cast<std::size_t>(r.ptr - retry_buf));
      }
      in.body = err_body;
      in.instance = ex_.path;
      in.request_id = ex_.request_id;
      in.accept = ex_.accept;
      ex_.normalized = worker_.normalizer().normalize(in, popts, route.problem);
      if (!ex_.normalized.rewritten) {
        prefix = err_body.size();
      }
    } else {
      prefix = err_body.size();  // over the cap: passed through untouched
      obs::bump(route_counters.oversized_errors);
    }
    rewritten = prefix == 0 && ex_.normalized.rewritten;
    if (rewritten) {
      auto& out = ex_.normalized;
      ex_.dialect = problem::dialect_name(out.dialect);
      ex_.code = out.code;
      ex_.subcode = out.subcode;
      if (out.hidden_detail) ex_.hidden_detail = *out.hidden_detail;
      worker_.metrics().count_rewrite(route.name, ex_.dialect, ex_.code, ex_.subcode);
      if (out.dialect == problem::Dialect::text) obs::bump(route_counters.unrecognised_bodies);
      // Upstream rate-limit facts found in the body (flat dialect) fill what headers lacked.
      ratelimit::UpstreamLimit from_body;
      const auto now_s = worker_.shared().clock.now_ns() / 1'000'000'000;
      if (out.rate_limit.limit && *out.rate_limit.limit >= 0) from_body.limit = static_cast<std::uint64_t>(*out.rate_limit.limit);
      if (out.rate_limit.remaining) from_body.remaining = static_cast<std::uint64_t>(std::max<std::int64_t>(0, *out.rate_limit.remaining));
      if (out.rate_limit.reset && *out.rate_limit.reset >= 0)
        from_body.reset_epoch_s = ratelimit::reset_to_epoch(static_cast<std::uint64_t>(*out.rate_limit.reset), now_s);
      if (out.retry_after) from_body.retry_after_s = *out.retry_after;
      ratelimit::merge_missing(ex_.upstream_limit, from_body);
    }
    build_response_head(rt, res, rscan, rewritten, !rewritten && chunk_out, keep_alive);
  }

  // --- Relay the body (or the rewritten one). The head goes out with the first piece.
  MessageWriter rsr(down_head_, no_body                  ? MessageWriter::Framing::none
                                : !rewritten && chunk_out ? MessageWriter::Framing::chunked
                                                          : MessageWriter::Framing::length);
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
      // pipe to be had (descriptors), or a small rest, it is read and written here.
      Pipe pipe;
      if (raw_left >= kSpliceMin && conn.buffer.size() == 0 && rsr.head_sent()) pipe = worker_.pipes().take();
      if (pipe.valid()) {
        const SpliceOutcome r = co_await splice_body(conn.stream, up_cfg.timeout, client_,
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
      auto [ec, n] = co_await http::async_read_some(conn.stream.socket(), conn.buffer, *rp, kNoThrow);
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
      auto [ec, n] = co_await net::async_write(client_.socket(), bufs, kNoThrow);
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
    pool.discard(std::move(acquired.conn));
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
    if (body_done() && upstream_keep_alive) pool.release(std::move(acquired.conn));
    else pool.discard(std::move(acquired.conn));
    co_return Outcome::close;
  }
  // A 204 that declared a body, or a 204/304 with Transfer-Encoding, broke framing: whatever it
  // meant to send may still arrive and would be read as the next request's response.
  const bool declared_bodyless_body =
      (status == 204 && (upstream_chunked || (upstream_has_length && rscan.content_length != 0))) ||
      (status == 304 && upstream_chunked);
  if (body_done() && upstream_keep_alive && body.done && !declared_bodyless_body)
    pool.release(std::move(acquired.conn));
  else pool.discard(std::move(acquired.conn));
  update_pool_gauges();
  co_return keep_alive ? Outcome::keep_alive : Outcome::close;
}

void Session::build_response_head(const Runtime& rt, const HeadView& res, const HeadScan& rscan,
                                  bool rewritten, bool chunk_out, bool keep_alive) {
  const auto& cfg = rt.config;
  rate_limit_fields(rt);
  down_head_.clear();
  down_head_.append("HTTP/1.1 ", 9);
  down_head_.append(res.bytes.substr(9, 3));  // the status code, as scanned
  down_head_.push_back(' ');
  const std::string_view reason = res.bytes.substr(rscan.reason_off, rscan.reason_len);
  if (!reason.empty()) down_head_.append(reason);
  else down_head_.append(http::obsolete_reason(static_cast<http::status>(rscan.status)));
  down_head_.append("\r\n", 2);
  skip_.clear();
  skip_.add_hop_by_hop(res);
  skip_.add(cfg.request_id.header);
  skip_.add("content-length");  // framing is always written from what was scanned, below
  for (const auto& f : rl_fields_) skip_.add(f.name);
  if (rewritten) {
    for (std::string_view n : {"content-type", "content-encoding", "etag",
                               "last-modified", "content-md5", "digest", "content-digest",
                               "repr-digest"})
      skip_.add(n);
  }
  append_fields_except(res, skip_, down_head_);
  skip_.clear();
  if (rewritten) {
    append_field(down_head_, "Content-Type", ex_.normalized.content_type);
    char len[24];
    const auto r = std::to_chars(len, len + sizeof len, ex_.normalized.body.size());
    append_field(down_head_, "Content-Length", std::string_view(len, static_cast<std::size_t>(r.ptr - len)));
  } else if (chunk_out) {
    append_field(down_head_, "Transfer-Encoding", "chunked");
  } else if (rscan.has_content_length) {
    char len[24];
    const auto r = std::to_chars(len, len + sizeof len, rscan.content_length);
    append_field(down_head_, "Content-Length", std::string_view(len, static_cast<std::size_t>(r.ptr - len)));
  }
  append_field(down_head_, cfg.request_id.header, ex_.request_id);
  for (const auto& f : rl_fields_) append_field(down_head_, f.name, f.value);
  // keep_alive was decided when the request head arrived; a drain that began since closes too.
  if (!keep_alive || worker_.draining()) {
    append_field(down_head_, "Connection", "close");
    response_closes_ = true;
  }
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
  ratelimit::build_headers(gw, up, route ? std::string_view(route->name) : std::string_view("default"),
                           window_s, rt.config.rate_limit_headers,
                           worker_.shared().clock.now_ns() / 1'000'000'000, rl_fields_);
}

void Session::set_rate_limit_headers(const Runtime& rt, http::fields& f) {
  rate_limit_fields(rt);
  for (const auto& h : rl_fields_) f.set(h.name, h.value);
}

net::awaitable<void> Session::local_reply(const Runtime& rt, core::GatewayError e, bool close) {
  const auto& cfg = rt.config;
  problem::Problem p = problem::make_gateway_problem(e, ex_.path, ex_.request_id, cfg.problem);
  if (e == core::GatewayError::rate_limited && ex_.decision) p.retry_after = ex_.decision->retry_after_s;
  std::string body;
  problem::write_problem(p, body);
  http::response<http::string_body> res{static_cast<http::status>(p.status), 11};
  res.set(http::field::content_type, problem::negotiate_content_type(ex_.accept));
  res.set(cfg.request_id.header, ex_.request_id);
  scratch_.assign(core::hdr::kProxyName);
  scratch_ += "; error=";
  scratch_ += core::gateway_error_info(e).proxy_status;
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
  append_response_head(res, down_head_);
  const std::array<net::const_buffer, 2> bufs{net::buffer(down_head_), net::buffer(res.body())};
  client_.arm(cfg.limits.write_timeout);
  auto [ec, n] = co_await net::async_write(client_.socket(), bufs, kNoThrow);
  client_.disarm();
  ex_.bytes_out += n;
}

void Session::finish_exchange() {
  if (ex_.request_id.empty()) return;
  const Runtime* rt = &snapshot_->runtime();
  const double duration_ms = std::chrono::duration<double, std::milli>(steady::now() - ex_.started).count();
  auto& rc = snapshot_->route_counters(ex_.route);
  const int cls = ex_.status / 100;
  if (cls >= 1 && cls <= 5)
    obs::bump(rc.requests[static_cast<std::size_t>(obs::method_label(ex_.method))][static_cast<std::size_t>(cls - 1)]);
  rc.duration.observe(duration_ms / 1000.0);
  if (rt->config.access_log) {
    obs::AccessRecord r;
    r.time_ms = ex_.time_ms;
    r.request_id = ex_.request_id;
    r.method = ex_.method;
    r.path = ex_.path;
    r.status = ex_.status;
    if (ex_.route) {
      r.route = ex_.route->name;
      r.upstream = ex_.route->upstream;
    }
    r.duration_ms = duration_ms;
    r.bytes_in = ex_.bytes_in;
    r.bytes_out = ex_.bytes_out;
    r.client = peer_ip_;
    r.user_agent = ex_.user_agent;
    r.error = ex_.error;
    r.dialect = ex_.dialect;
    r.code = ex_.code;
    r.subcode = ex_.subcode;
    r.hidden_detail = ex_.hidden_detail;
    worker_.shared().access_log.write(r, worker_.log_scratch());
  }
  ex_.request_id.clear();
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
    auto [ec, n] = co_await http::async_read_some(client_.socket(), buffer_, p, kNoThrow);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      if (ec == http::error::body_limit) err = BodyError::too_large;
      else if (client_.timed_out()) err = BodyError::timeout;
      else if (ec == http::error::end_of_stream || ec == net::error::eof ||
               ec == http::error::partial_message || ec == net::error::connection_reset)
        err = BodyError::client_closed;
      else err = BodyError::malformed;  // bad chunk framing
      co_return 0;
    }
    got = cap - p.get().body().size;
    body.done = p.is_done();
  } else {
    boost::system::error_code ec;
    got = co_await read_bounded(client_, buffer_, rt.config.limits.body_idle_timeout, dst, cap, body.left, ec);
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

net::awaitable<void> Session::lingering_close() {
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

}  // namespace

net::awaitable<void> run_session(Worker& worker, tcp::socket socket) {
  Session session(worker, std::move(socket));
  co_await session.run();
}

}  // namespace problemgate::proxy
