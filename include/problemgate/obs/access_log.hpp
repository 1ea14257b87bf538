#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace problemgate::obs {

/// One request's facts for its access-log line. Views must stay valid during write().
struct AccessRecord {
  std::int64_t time_ms = 0;  ///< Unix ms when the request head was read
  std::string_view request_id;
  std::string_view trace_id;  ///< W3C trace id (32 hex), "" when none
  std::string_view method;
  std::string_view host;  ///< the authority routed on (Host, or an absolute-form target's)
  std::string_view path;
  std::string_view query;     ///< without '?', already redacted (redact_query)
  std::string_view protocol;  ///< "HTTP/1.1" / "HTTP/1.0"; "" when the head was not understood
  int status = 0;
  /// False when the gateway answered without writing the request to an upstream (a local
  /// 429, 404, 502 after refused connects...): then the upstream_* fields are absent.
  bool upstream_contacted = false;
  std::string_view upstream_address;  ///< the endpoint that answered (or failed last)
  int upstream_status = 0;            ///< 0: no response head came
  double upstream_ms = -1;            ///< endpoint chosen to response head; < 0: none
  std::string_view forwarded_for;     ///< the X-Forwarded-For received, "" when none
  std::string_view route;
  std::string_view upstream;
  /// The upstream endpoints tried, in order, space-separated. Written unescaped: only ever
  /// addresses the gateway formatted ("10.0.0.5:8000", "[::1]:8000").
  std::string_view endpoints;
  double duration_ms = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::string_view client;
  std::string_view user_agent;
  std::string_view error;  ///< gateway failure kind, when any
  std::string_view dialect;
  std::string_view code;
  std::string_view subcode;
  std::string_view hidden_detail;  ///< the upstream detail hidden from a 5xx client
  std::size_t detail_cap = 2048;   ///< bytes of hidden_detail kept (telemetry.max_logged_detail)
  /// A request that became a tunnel (status 101): the protocol, the bytes it moved each way
  /// after the handshake, how long it stayed open and why it closed. Empty `upgrade`: none.
  std::string_view upgrade;
  /// A TLS client's verified certificate subject (listen tls.client_ca); empty: none.
  std::string_view client_cert;
  std::string_view
      tls_version;  ///< "TLSv1.3", "TLSv1.2" on a TLS listener (OpenSSL's static names)
  std::uint64_t tunnel_bytes_up = 0;    ///< client -> upstream
  std::uint64_t tunnel_bytes_down = 0;  ///< upstream -> client
  double tunnel_ms = 0;
  std::string_view tunnel_close;
};

/// Writes one JSON object per line to a file descriptor (stdout) without ever making a
/// request wait for it: workers append whole lines to a bounded in-memory queue and one writer
/// thread drains it with write(2), at least once a second or as soon as 64 KiB are waiting
/// (nginx's `buffer=64k flush=1s`). When the reader stops reading (a stalled pipe, a log
/// shipper that died) the queue fills to its cap and further lines are dropped and counted:
/// the proxy keeps serving and the log never holds a torn line. Client-supplied values are
/// escaped and capped (kMaxFieldBytes), so they can never break or bloat a line. Thread-safe.
class AccessLog {
 public:
  static constexpr std::size_t kMaxFieldBytes = 2048;
  static constexpr std::size_t kDefaultQueueBytes = 1024 * 1024;

  /// `enabled` false makes write() a no-op and starts no thread. Lines go to `fd`.
  explicit AccessLog(bool enabled = true, int fd = 1, std::size_t queue_bytes = kDefaultQueueBytes);
  /// Writes what is queued, waiting for a stalled reader at most `kCloseWait`.
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  /// Formats `r` into `scratch` (reused per worker to avoid allocations) and queues the line,
  /// or drops it when the queue is full.
  void write(const AccessRecord& r, std::string& scratch);

  /// The queue's cap (config limits.access_log_buffer_bytes; a reload applies it).
  void set_queue_bytes(std::size_t bytes);
  /// Lines dropped so far because the queue was full or the descriptor failed.
  std::uint64_t dropped_lines() const;
  /// Waits until every line queued before the call was handed to the descriptor, up to
  /// `timeout`. Returns false on timeout (the reader is stalled).
  bool flush(std::chrono::milliseconds timeout);

  /// The line write() would emit, without the newline. Exposed for tests.
  static void format(const AccessRecord& r, std::string& out);

  static constexpr std::chrono::milliseconds kCloseWait{2000};

 private:
  struct Queue;
  std::shared_ptr<Queue>
      queue_;  // shared with the writer thread, which may outlive a stalled close
};

/// `query` (with or without its leading '?') into `out` (replacing it), without the '?', each
/// parameter whose name is one of `names` written as `name=REDACTED`. Names compare exactly
/// (as written in the query); other parameters are copied as they are.
void redact_query(std::string_view query, const std::vector<std::string>& names, std::string& out);

/// Unix milliseconds as RFC 3339 UTC with milliseconds, `2026-12-07T22:30:00.123Z` (appended).
/// The calendar part is cached per thread for the current second.
void append_rfc3339(std::string& out, std::int64_t unix_ms);

/// Configures the diagnostics logger (stderr) at `level` ("trace".."off"). Returns false for
/// an unknown level name.
bool init_diagnostics(std::string_view level);

}  // namespace problemgate::obs
