#pragma once
// The request path's shared parts: a Session (one client connection) and the per-request
// state its phases share. Private to src/proxy: session.cpp tells a connection's story,
// forwarder.cpp the exchange with the upstream (attempts, retries), response_relay.cpp the
// response's way back, upstream_head.cpp the heads it writes, request_body.cpp the request body
// reads, error_rewrite.cpp the call to `problem`, local_reply.cpp the gateway's own answers.
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

#include "problemgate/core/header_names.hpp"
#include "problemgate/core/request_id.hpp"
#include "problemgate/core/request_target.hpp"
#include "problemgate/core/trace_context.hpp"
#include "problemgate/obs/access_log.hpp"
#include "problemgate/problem/problem.hpp"
#include "problemgate/ratelimit/rate_limit_headers.hpp"
#include "proxy/client_stream.hpp"
#include "proxy/client_address.hpp"
#include "problemgate/http1/head_scanner.hpp"
#include "problemgate/http1/head_view.hpp"
#include "problemgate/http1/message_writer.hpp"
#include "problemgate/http1/splice_relay.hpp"
#include "proxy/forward_rules.hpp"
#include "proxy/tunnel.hpp"
#include "proxy/upgrade.hpp"
#include "proxy/worker.hpp"

#include "proxy/worker_snapshot.hpp"

namespace problemgate::proxy {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

// The wire layer's vocabulary, used throughout the request path.
using http1::FieldSpan;
using http1::HeadLimits;
using http1::HeadScan;
using http1::HeadVerdict;
using http1::HeadView;
using http1::iequals;
using http1::MessageWriter;
using http1::NameSet;
using http1::Pipe;
using http1::SpliceOutcome;

inline constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

/// Where a request body comes from: Content-Length bytes (raw) or Beast's chunk decoder.
struct RequestBody {
  std::optional<http::request_parser<http::buffer_body>> chunks;
  std::uint64_t left = 0;  ///< Content-Length bytes still to read
  bool done = true;
};

/// Why reading a request body stopped early.
enum class BodyError { none, client_closed, timeout, too_large, malformed };

/// Up to `cap` bytes of a Content-Length body from what `buffer` already holds, never more than
/// `left` (which it decrements); no I/O. read_bounded's first step, also called on its own so a
/// body that came with its head costs no coroutine.
std::size_t take_buffered(beast::flat_buffer& buffer, char* dst, std::size_t cap,
                          std::uint64_t& left);

/// Up to `cap` bytes of a Content-Length body into `dst`, never more than `left` (which it
/// decrements): the bytes already buffered behind the head first, else one read under
/// `timeout`. Nothing past the body is ever read. Used for both directions. 0 with `ec` set on
/// a failed read (the socket's timed_out() tells a deadline from a close).
net::awaitable<std::size_t> read_bounded(http1::DeadlineSocket& s, beast::flat_buffer& buffer,
                                         config::Duration timeout, char* dst, std::size_t cap,
                                         std::uint64_t& left, boost::system::error_code& ec);

/// The body limit of a route: its own, else the global one (0 = none).
inline std::uint64_t body_limit_of(const config::Route& route, const config::Config& cfg) {
  return route.max_body_bytes ? *route.max_body_bytes : cfg.limits.max_body_bytes;
}

inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

inline constexpr std::size_t kRelayChunk = 64 * 1024;
/// Content-Length bodies with at least this much left after the first read are spliced
/// (splice_relay.hpp); below it, one read and one write cost less than the pipe round trip.
inline constexpr std::uint64_t kSpliceMin = 64 * 1024;
inline constexpr std::size_t kReadChunk = 8 * 1024;
inline constexpr auto kLingerTimeout = std::chrono::seconds(2);
inline constexpr std::size_t kLingerBytes = 256 * 1024;
inline constexpr std::size_t kUpstreamHeadLimit = 64 * 1024;

inline std::string_view view_of(const beast::flat_buffer& b) {
  auto d = b.data();
  return {static_cast<const char*>(d.data()), d.size()};
}

inline std::string_view path_of(std::string_view target) {
  const auto q = target.find_first_of("?#");
  return q == std::string_view::npos ? target : target.substr(0, q);
}

inline bool is_idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE" || method == "TRACE";
}

inline core::GatewayError head_error(HeadVerdict v) {
  switch (v) {
    case HeadVerdict::uri_too_long: return core::GatewayError::uri_too_long;
    case HeadVerdict::too_large: return core::GatewayError::headers_too_large;
    case HeadVerdict::not_implemented: return core::GatewayError::not_implemented;
    default: return core::GatewayError::malformed_request;
  }
}

/// Every X-Forwarded-For field line as one list, in order (RFC 9110 §5.3: the same as one
/// comma-joined line); HAProxy, for one, appends its hop as a separate line.
inline void forwarded_for(const HeadView& head, std::string& out) {
  out.clear();
  for (const auto& f : head.fields) {
    if (f.name_len != core::hdr::kForwardedFor.size() ||
        !iequals(head.name(f), core::hdr::kForwardedFor))
      continue;
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
  // W3C trace context: the trace this request belongs to (the client's, when its traceparent
  // was valid, else a new one) and the gateway's own span id in it.
  std::array<char, 32> trace_id{};
  std::array<char, 16> span_id{};
  std::uint8_t trace_flags = 0;
  bool has_trace = false;
  bool trace_continued = false;  // the client's traceparent was valid (its tracestate goes on)
  // Access-log copies of request-head facts (the head is consumed before the line is written).
  std::string host;
  std::string query;                 // without '?', telemetry.redact_query applied
  std::string forwarded_for;         // the X-Forwarded-For lines received, joined
  std::uint8_t http_minor = 0xFF;    // 0 or 1; 0xFF: the head was not understood
  bool upstream_contacted = false;   // a request was written on an upstream connection
  int upstream_status = 0;           // the upstream's status, 0 = no response head
  double upstream_ms = -1;           // endpoint chosen to response head; < 0: none
  steady::time_point upstream_sent;  // the request went on a connection in hand
  const config::Route* route = nullptr;
  std::optional<ratelimit::Decision> decision;
  ratelimit::UpstreamLimit upstream_limit;
  int status = 0;
  std::string_view error;
  std::string endpoints;  // upstream endpoints tried, space-separated (access log)
  std::string_view
      proxy_error;       // RFC 9209 error token of the last upstream failure (else the row's)
  std::string next_hop;  // the endpoint that failed last (Proxy-Status next-hop)
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::string_view dialect;
  std::string code;
  std::string subcode;
  std::string hidden_detail;
  std::string error_body;
  std::string request_body;  // the buffered part of the request body (limits.request_buffer_bytes)
  problem::Output normalized;
  bool wants_websocket = false;  // asks_for_websocket(), on a route that allows it
  // Set once the upstream's 101 went to the client: the access log's tunnel fields.
  std::string_view upgrade;
  steady::time_point tunnel_started;
  std::uint64_t tunnel_bytes_up = 0;
  std::uint64_t tunnel_bytes_down = 0;
  std::string_view tunnel_close;

  void reset() {
    request_id.clear();
    path.clear();
    method.clear();
    accept.clear();
    user_agent.clear();
    has_trace = trace_continued = false;
    host.clear();
    query.clear();
    forwarded_for.clear();
    http_minor = 0xFF;
    upstream_contacted = false;
    upstream_status = 0;
    upstream_ms = -1;
    route = nullptr;
    decision.reset();
    upstream_limit = {};
    status = 0;
    error = {};
    endpoints.clear();
    proxy_error = {};
    next_hop.clear();
    bytes_in = bytes_out = 0;
    dialect = {};
    code.clear();
    subcode.clear();
    hidden_detail.clear();
    wants_websocket = false;
    upgrade = {};
    tunnel_bytes_up = tunnel_bytes_down = 0;
    tunnel_close = {};
  }
};

/// Where a response body comes from: Content-Length bytes (raw, never read past the body) or
/// Beast's parser behind a synthetic head (chunked, or until the upstream closes).
struct ResponseBody {
  std::optional<http::response_parser<http::buffer_body>> decoded;
  std::uint64_t left = 0;  ///< raw: Content-Length bytes still to read
  bool none = false;       ///< HEAD, 204, 304: no body whatever the head says
  bool raw = false;
  bool done() const { return none || (raw ? left == 0 : decoded->is_done()); }
};

/// Up to `cap` bytes of a response body into `dst` (0 with done() false: only chunk framing was
/// read). `failed` when the upstream closed, reset or timed out before the body's end.
net::awaitable<std::size_t> read_response_piece(upstream::Connection& conn, ResponseBody& body,
                                                config::Duration timeout, char* dst,
                                                std::size_t cap, bool& failed);

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

/// One request's way through an upstream: what the forwarding phases share. A Session member,
/// reused by each request of the connection, so the phases' coroutine frames stay small (Asio
/// recycles small frames; a large one costs an aligned allocation per request).
struct Forwarding {
  const config::Route* route = nullptr;
  const config::Upstream* settings = nullptr;
  upstream::Balancer* balancer = nullptr;
  obs::UpstreamCounters* counters = nullptr;
  bool has_body = false;
  bool idempotent = false;
  bool expect_continue = false;  ///< the client waits for a 100 before sending its body
  bool continue_sent = false;
  RequestBody body;
  std::optional<RelayBuffer> relay;  ///< taken once the request goes upstream
  steady::time_point upstream_started;
  std::int64_t started_ns = 0;  ///< upstream_started, for the balancer and outlier detection
  // The attempt that got a response head (exchange_with_upstream):
  upstream::Acquired acquired;
  std::shared_ptr<upstream::UpstreamPool>
      pool_ref;  // held: a DNS change may drop it from the balancer
  upstream::UpstreamPool* pool = nullptr;
  HeadScan response;  ///< the upstream's response head, scanned (in acquired.conn->buffer)
  boost::system::error_code upstream_error;  ///< why the last attempt's write or read failed
  ResponseBody response_body;

  void begin(const config::Route& r, const config::Upstream& u, upstream::Balancer& b,
             obs::UpstreamCounters& c) {
    route = &r;
    settings = &u;
    balancer = &b;
    counters = &c;
    continue_sent = false;
    body.chunks.reset();
    response_body.decoded.reset();
  }
  /// Gives back what the exchange borrowed (the relay buffer, the pool, a connection left over).
  void end() {
    relay.reset();
    if (acquired.conn && pool) pool->discard(std::move(acquired.conn));
    acquired = {};
    pool_ref.reset();
    pool = nullptr;
  }
  void update_pool_gauges() const {
    counters->open.store(balancer->open_count(), std::memory_order_relaxed);
    counters->idle.store(balancer->idle_count(), std::memory_order_relaxed);
  }
  void count_failure(obs::UpstreamFailure f) const {
    obs::bump(counters->failures[static_cast<std::size_t>(f)]);
    update_pool_gauges();
  }
  /// The connection is done with: back to the pool when `end` allows, else closed.
  void finish_connection(const ExchangeEnd& e) {
    if (reusable(e))
      pool->release(std::move(acquired.conn));
    else
      pool->discard(std::move(acquired.conn));
  }
};

class Session {
 public:
  Session(Worker& worker, tcp::socket socket, const ListenerInfo& listener)
      : worker_(worker), listener_(listener), client_(std::move(socket)), buffer_(kReadChunk) {}

  net::awaitable<void> run();

 private:
  enum class HeadResult { ok, closed, rejected };
  enum class Outcome { keep_alive, close };

  net::awaitable<HeadResult> read_head(const Runtime& rt, HeadScan& scan);
  net::awaitable<Outcome> handle(const Runtime& rt, const HeadScan& scan);
  // Forwarding, phase by phase (handle() runs them in order; HAProxy's http_ana.c names one
  // step per phase the same way). Each phase that is not the last returns the outcome when the
  // exchange ended early (a local reply was sent), nullopt to go on.
  /// The upstream request head, the request body's framing: no I/O.
  void start_forwarding(const Runtime& rt, Forwarding& fw, const HeadScan& scan,
                        const HeadView& req);
  /// Request buffering (nginx's proxy_request_buffering): up to limits.request_buffer_bytes of
  /// the body into ex_.request_body before an upstream connection is taken.
  net::awaitable<std::optional<Outcome>> buffer_request_body(const Runtime& rt, Forwarding& fw);
  /// Picks endpoints, connects, sends the request and reads the response head, with the
  /// retries the rules allow. nullopt: fw.acquired holds the connection and fw.response its
  /// head.
  net::awaitable<std::optional<Outcome>> exchange_with_upstream(const Runtime& rt, Forwarding& fw,
                                                                const HeadScan& scan,
                                                                bool keep_alive);
  enum class SendResult { sent, upstream_failed, client_failed };
  /// A request with a body to the upstream (the head goes out with the first piece).
  net::awaitable<SendResult> send_request(const Runtime& rt, Forwarding& fw, const HeadScan& scan,
                                          upstream::Connection& conn, BodyError& body_error);
  /// Scans what the upstream sent so far into fw.response, dropping interim 1xx heads: true
  /// when a head is there (or a bad one, or one too large), false when more bytes are needed.
  bool scan_response_head(Forwarding& fw, upstream::Connection& conn);
  /// The response back to the client: relayed, or buffered and rewritten when it is an error.
  net::awaitable<Outcome> relay_response(const Runtime& rt, Forwarding& fw, const HeadScan& scan,
                                         bool keep_alive);
  /// The error body into ex_.error_body, up to problem.max_error_body (+1 to tell "over").
  /// False when the upstream failed before the body's end.
  net::awaitable<bool> read_error_body(const Runtime& rt, Forwarding& fw);
  /// A body error from the client: the matching canonical reply (or none when it left).
  net::awaitable<Outcome> fail_request_body(const Runtime& rt, BodyError e);
  net::awaitable<void> local_reply(const Runtime& rt, core::GatewayError e, bool close);
  /// A local reply that ends the exchange: the connection closes when `close` (an unread
  /// body, or the client asked), else it stays open for the next request.
  net::awaitable<Outcome> reply_and_finish(const Runtime& rt, core::GatewayError e, bool close) {
    co_await local_reply(rt, e, close);
    co_return close ? Outcome::close : Outcome::keep_alive;
  }
  net::awaitable<void> lingering_close();
  /// The TLS handshake of a TLS listener's connection, within its handshake_timeout; false
  /// (counted by reason) when it failed.
  net::awaitable<bool> tls_handshake();
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
  /// Starts a new trace for this exchange (no valid traceparent came with it).
  void new_trace() {
    worker_.ids().next_trace(ex_.trace_id.data(), ex_.span_id.data());
    ex_.trace_flags = 1;  // sampled: the upstream's tracer records what it sees of this request
    ex_.has_trace = true;
    ex_.trace_continued = false;
  }
  std::string_view trace_id() const noexcept {
    return ex_.has_trace ? std::string_view(ex_.trace_id.data(), ex_.trace_id.size())
                         : std::string_view{};
  }
  /// The rate-limit fields of this exchange's response (spec §6), into rl_fields_.
  void rate_limit_fields(const Runtime& rt);
  void set_rate_limit_headers(const Runtime& rt, http::fields& f);
  /// Normalizes the buffered upstream error body (ex_.error_body, `complete` when it all fit
  /// under problem.max_error_body; else the status-only `oversize` problem): true when the client
  /// gets the rewritten body (false only for a content coding the normalizer cannot decode).
  bool rewrite_error(const Runtime& rt, const HeadView& res, int status, bool complete,
                     obs::RouteCounters& route_counters);
  void merge_body_rate_limit(const problem::Output& out);
  /// After the upstream's 101 to a WebSocket request: sends the 101 on and relays bytes both
  /// ways until the tunnel ends; the upstream connection is discarded, never pooled.
  net::awaitable<Outcome> open_tunnel(const Runtime& rt, const HeadView& res, const HeadScan& rscan,
                                      std::unique_ptr<upstream::Connection> conn,
                                      upstream::UpstreamPool& pool);
  /// The 101 head for the client, from the upstream's `res`, into down_head_.
  void build_switching_head(const Runtime& rt, const HeadView& res, const HeadScan& rscan);
  /// The request head for the upstream, from the client's head `req`, into up_head_.
  void build_upstream_head(const Runtime& rt, const HeadScan& scan, const HeadView& req);
  /// The response head for the client, from the upstream's head `res`, into down_head_.
  void build_response_head(const Runtime& rt, const HeadView& res, const HeadScan& rscan,
                           bool rewritten, bool chunk_out, bool keep_alive);
  std::string_view client_ip(const Runtime& rt, const HeadView& req);
  /// The limit check in the shared store: false when it failed and on_error is deny. Sets
  /// ex_.decision when the store decided.
  net::awaitable<bool> check_shared_limit(const Runtime& rt, redis::StoreClient& store,
                                          const ratelimit::LimitKey& key);

  Worker& worker_;
  const ListenerInfo& listener_;
  std::shared_ptr<const http1::ServerTls>
      tls_;                       // the certificates this connection was accepted with
  std::string client_cert_;       // the verified client certificate's subject
  std::string_view tls_version_;  // the negotiated protocol, on a TLS listener
  ClientStream client_;
  beast::flat_buffer buffer_;
  Exchange ex_;
  std::string peer_ip_;
  std::string client_ip_;  // per request (trusted proxies may change it)
  std::string scratch_;
  std::string up_head_;     // the upstream request head being sent (kept for a retry)
  std::string down_head_;   // the client response head being sent
  std::string error_head_;  // an error response's upstream head, kept while its body is read
  Forwarding fw_;           // the request in progress's way through the upstream
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
  const WorkerSnapshot* snapshot_ =
      nullptr;                    // the snapshot of the request in progress (kept alive by run())
  IdleClient idle_{client_};      // linked while waiting for the next request (drain closes it)
  bool last_request_ = false;     // max_requests_per_connection reached with this request
  bool response_closes_ = false;  // the response sent for this request said Connection: close
  std::uint32_t served_ = 0;      // requests read on this connection
};

}  // namespace problemgate::proxy
