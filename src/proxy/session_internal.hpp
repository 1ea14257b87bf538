#pragma once
// The request path's shared parts: a Session (one client connection) and the per-request
// state its phases share. Private to src/proxy: session.cpp tells a connection's story,
// forwarder.cpp the exchange with the upstream, upstream_head.cpp the heads it writes,
// request_body.cpp the body reads, local_reply.cpp the gateway's own answers.
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
#include "problemgate/problem/problem.hpp"
#include "problemgate/ratelimit/rate_limit_headers.hpp"
#include "proxy/client_stream.hpp"
#include "proxy/client_address.hpp"
#include "problemgate/http1/head_scanner.hpp"
#include "problemgate/http1/head_view.hpp"
#include "problemgate/http1/message_writer.hpp"
#include "problemgate/http1/splice_relay.hpp"
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


inline constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

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

inline core::GatewayError head_error(http1::HeadVerdict v) {
  switch (v) {
    case http1::HeadVerdict::uri_too_long: return core::GatewayError::uri_too_long;
    case http1::HeadVerdict::too_large: return core::GatewayError::headers_too_large;
    case http1::HeadVerdict::not_implemented: return core::GatewayError::not_implemented;
    default: return core::GatewayError::malformed_request;
  }
}

/// Every X-Forwarded-For field line as one list, in order (RFC 9110 §5.3: the same as one
/// comma-joined line); HAProxy, for one, appends its hop as a separate line.
inline void forwarded_for(const http1::HeadView& head, std::string& out) {
  out.clear();
  for (const auto& f : head.fields) {
    if (f.name_len != core::hdr::kForwardedFor.size() || !http1::iequals(head.name(f), core::hdr::kForwardedFor)) continue;
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
  std::string endpoints;        // upstream endpoints tried, space-separated (access log)
  std::string_view proxy_error; // RFC 9209 error token of the last upstream failure (else the row's)
  std::string next_hop;         // the endpoint that failed last (Proxy-Status next-hop)
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
  Session(Worker& worker, tcp::socket socket, const ListenerInfo& listener)
      : worker_(worker), listener_(listener), client_(std::move(socket)), buffer_(kReadChunk) {}

  net::awaitable<void> run();

private:
  enum class HeadResult { ok, closed, rejected };
  enum class Outcome { keep_alive, close };

  net::awaitable<HeadResult> read_head(const Runtime& rt, http1::HeadScan& scan);
  net::awaitable<Outcome> handle(const Runtime& rt, const http1::HeadScan& scan);
  net::awaitable<Outcome> forward(const Runtime& rt, const http1::HeadScan& scan, const http1::HeadView& req,
                                  bool keep_alive);
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
  /// The rate-limit fields of this exchange's response (spec §6), into rl_fields_.
  void rate_limit_fields(const Runtime& rt);
  void set_rate_limit_headers(const Runtime& rt, http::fields& f);
  /// Normalizes the buffered upstream error body (ex_.error_body, `complete` when it all fit
  /// under problem.max_error_body; else the status-only `oversize` problem): true when the client
  /// gets the rewritten body (false only for a content coding the normalizer cannot decode).
  bool rewrite_error(const Runtime& rt, const http1::HeadView& res, int status, bool complete,
                     obs::RouteCounters& route_counters);
  void merge_body_rate_limit(const problem::Output& out);
  /// After the upstream's 101 to a WebSocket request: sends the 101 on and relays bytes both
  /// ways until the tunnel ends; the upstream connection is discarded, never pooled.
  net::awaitable<Outcome> open_tunnel(const Runtime& rt, const http1::HeadView& res, const http1::HeadScan& rscan,
                                      std::unique_ptr<upstream::Connection> conn,
                                      upstream::UpstreamPool& pool);
  /// The 101 head for the client, from the upstream's `res`, into down_head_.
  void build_switching_head(const Runtime& rt, const http1::HeadView& res, const http1::HeadScan& rscan);
  /// The request head for the upstream, from the client's head `req`, into up_head_.
  void build_upstream_head(const Runtime& rt, const http1::HeadScan& scan, const http1::HeadView& req);
  /// The response head for the client, from the upstream's head `res`, into down_head_.
  void build_response_head(const Runtime& rt, const http1::HeadView& res, const http1::HeadScan& rscan,
                           bool rewritten, bool chunk_out, bool keep_alive);
  std::string_view client_ip(const Runtime& rt, const http1::HeadView& req);
  /// The limit check in the shared store: false when it failed and on_error is deny. Sets
  /// ex_.decision when the store decided.
  net::awaitable<bool> check_shared_limit(const Runtime& rt, redis::StoreClient& store,
                                          const ratelimit::LimitKey& key);

  Worker& worker_;
  const ListenerInfo& listener_;
  std::shared_ptr<const http1::ServerTls> tls_;  // the certificates this connection was accepted with
  std::string client_cert_;                      // the verified client certificate's subject
  ClientStream client_;
  beast::flat_buffer buffer_;
  Exchange ex_;
  std::string peer_ip_;
  std::string client_ip_;  // per request (trusted proxies may change it)
  std::string scratch_;
  std::string up_head_;    // the upstream request head being sent (kept for a retry)
  std::string down_head_;  // the client response head being sent
  std::string error_head_; // an error response's upstream head, kept while its body is read
  std::vector<http1::FieldSpan> req_fields_;
  std::vector<http1::FieldSpan> res_fields_;
  std::vector<ratelimit::HeaderField> rl_fields_;
  http1::NameSet skip_;
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

}  // namespace problemgate::proxy
