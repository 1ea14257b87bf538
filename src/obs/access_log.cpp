#include "problemgate/obs/access_log.hpp"

#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>

#include "problemgate/core/json_escape.hpp"

namespace problemgate::obs {

namespace {

// `key` is the member's whole prefix, `,"name":` (one append per member, not three).
void field(std::string& out, std::string_view key, std::string_view value) {
  out += key;
  core::append_json_string(out, value, AccessLog::kMaxFieldBytes);
}

/// Appends to a stack buffer, so that several short members cost one std::string append (each
/// append is dozens of instructions; the line has many members).
struct Chunk {
  char buf[192];
  std::size_t n = 0;
  void put(std::string_view s) noexcept {
    s.copy(buf + n, s.size());
    n += s.size();
  }
  void status(int v) noexcept {  // 100..999 without to_chars
    buf[n++] = static_cast<char>('0' + v / 100);
    buf[n++] = static_cast<char>('0' + v / 10 % 10);
    buf[n++] = static_cast<char>('0' + v % 10);
  }
  void flush(std::string& out) {
    out.append(buf, n);
    n = 0;
  }
};

/// A 3-digit status (100..999) without to_chars: one append.
void status3(std::string& out, std::string_view key, int v) {
  if (v < 100 || v > 999 || key.size() > 32) {
    out += key;
    char buf[12];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
    return;
  }
  Chunk c;
  c.put(key);
  c.status(v);
  c.flush(out);
}

void number(std::string& out, std::string_view key, std::int64_t v) {
  out += key;
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

/// Milliseconds with 3 decimals, from integer microseconds (floating-point to_chars costs more
/// than the rest of the line).
void millis(std::string& out, double ms) {
  const auto us = static_cast<std::int64_t>(ms * 1000.0 + 0.5);
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, us / 1000);
  *r.ptr++ = '.';
  const int frac = static_cast<int>(us % 1000);
  *r.ptr++ = static_cast<char>('0' + frac / 100);
  *r.ptr++ = static_cast<char>('0' + frac / 10 % 10);
  *r.ptr++ = static_cast<char>('0' + frac % 10);
  out.append(buf, r.ptr);
}

}  // namespace

void append_rfc3339(std::string& out, std::int64_t ms) {
  // The calendar part changes once a second; format it once per second per thread.
  thread_local std::int64_t cached_secs = -1;
  thread_local char cached[32];
  thread_local std::size_t cached_len = 0;
  const std::int64_t secs64 = ms / 1000;
  if (secs64 != cached_secs) {
    const std::time_t secs = static_cast<std::time_t>(secs64);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    cached_len = std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_secs = secs64;
  }
  out.append(cached, cached_len);
  const int frac = static_cast<int>(ms % 1000);
  const char tail[6] = {'.',
                        static_cast<char>('0' + frac / 100),
                        static_cast<char>('0' + frac / 10 % 10),
                        static_cast<char>('0' + frac % 10),
                        'Z',
                        '\0'};
  out.append(tail, 5);
}

void redact_query(std::string_view q, const std::vector<std::string>& names, std::string& out) {
  out.clear();
  if (!q.empty() && q.front() == '?') q.remove_prefix(1);
  if (names.empty()) {
    out.assign(q);
    return;
  }
  while (true) {
    const auto amp = q.find('&');
    const std::string_view param = q.substr(0, amp);
    const auto eq = param.find('=');
    const std::string_view name = param.substr(0, eq);
    bool secret = false;
    if (eq != std::string_view::npos)
      for (const auto& n : names)
        if (n == name) {
          secret = true;
          break;
        }
    if (secret) {
      out.append(name);
      out.append("=REDACTED");
    } else {
      out.append(param);
    }
    if (amp == std::string_view::npos) break;
    out.push_back('&');
    q.remove_prefix(amp + 1);
  }
}

/// The lines waiting for the writer thread, and the thread.
struct AccessLog::Queue {
  // The writer is woken early once this much is waiting; otherwise it wakes once a second.
  static constexpr std::size_t kWakeBytes = 64 * 1024;

  int fd;
  std::mutex mutex;
  std::condition_variable wake;      // workers/close -> writer
  std::condition_variable progress;  // writer -> flush()/close
  std::string filling;               // appended to by workers, under `mutex`
  std::atomic<std::size_t> cap;
  std::atomic<std::uint64_t> dropped{0};
  std::uint64_t appended = 0;  // lines appended so far
  std::uint64_t handed = 0;    // lines handed to the descriptor (or dropped by a failure)
  std::size_t filling_lines = 0;
  bool flush_asked = false;
  bool stop = false;
  bool exited = false;
  // Set by the close: from then on the writer never logs (it may outlive main() when stalled).
  std::atomic<bool> closing{false};
  bool broken = false;  // the descriptor failed (EPIPE, EBADF...): lines are counted, not written

  Queue(int out, std::size_t bytes) : fd(out), cap(bytes) {}

  std::size_t wake_bytes() const {
    return std::min(kWakeBytes, cap.load(std::memory_order_relaxed) / 2);
  }

  void append(const std::string& line) {
    std::lock_guard lock(mutex);
    const std::size_t before = filling.size();
    if (before + line.size() > cap.load(std::memory_order_relaxed)) {
      dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    filling += line;
    ++filling_lines;
    ++appended;
    // One notify per 64 KiB (or half the cap), not per line: a wake-up per request would cost
    // a futex call.
    const std::size_t at = wake_bytes();
    if (before < at && filling.size() >= at) wake.notify_one();
  }

  /// Writes all of `data`; false when the descriptor failed for good.
  bool write_all(const std::string& data) {
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
      const ssize_t n = ::write(fd, p, left);
      if (n > 0) {
        p += n;
        left -= static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd pfd{fd, POLLOUT, 0};
        (void)::poll(&pfd, 1, 1000);  // a non-blocking descriptor inherited from the parent
      } else {
        return false;
      }
    }
    return true;
  }

  void run() {
    // A closed pipe must fail the write with EPIPE, not kill the process.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    std::string writing;
    std::uint64_t reported = 0;
    auto last_report = std::chrono::steady_clock::now();
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait_for(lock, std::chrono::seconds(1),
                    [&] { return stop || flush_asked || filling.size() >= wake_bytes(); });
      flush_asked = false;
      writing.swap(filling);
      const std::size_t lines = filling_lines;
      filling_lines = 0;
      const bool stopping = stop;
      lock.unlock();
      if (!writing.empty()) {
        if (broken || !write_all(writing)) {
          if (!broken && !closing.load())
            spdlog::error("access log: writing to fd {} failed ({}); lines are dropped from now on",
                          fd, std::strerror(errno));
          broken = true;
          dropped.fetch_add(lines, std::memory_order_relaxed);
        }
        writing.clear();
        if (writing.capacity() > cap.load(std::memory_order_relaxed)) std::string().swap(writing);
      }
      const std::uint64_t d = dropped.load(std::memory_order_relaxed);
      const auto now = std::chrono::steady_clock::now();
      if (d != reported && !broken && !closing.load() &&
          now - last_report >= std::chrono::seconds(10)) {
        spdlog::warn(
            "access log: {} lines dropped since the last report: its reader is not keeping up "
            "(limits.access_log_buffer_bytes bounds what is queued)",
            d - reported);
        reported = d;
        last_report = now;
      }
      lock.lock();
      handed += lines;
      progress.notify_all();
      if (stopping && filling.empty()) break;
    }
    exited = true;
    progress.notify_all();
  }
};

AccessLog::AccessLog(bool enabled, int fd, std::size_t queue_bytes) {
  if (!enabled) return;
  queue_ = std::make_shared<Queue>(fd, queue_bytes);
  queue_->filling.reserve(std::min(queue_bytes, Queue::kWakeBytes * 2));
  // The thread keeps the queue alive: when the reader is stalled at exit it is left behind
  // blocked in write(2) (the process is exiting) instead of hanging the shutdown.
  std::thread([q = queue_] { q->run(); }).detach();
}

AccessLog::~AccessLog() {
  if (!queue_) return;
  queue_->closing.store(true);
  std::unique_lock lock(queue_->mutex);
  queue_->stop = true;
  queue_->wake.notify_one();
  queue_->progress.wait_for(lock, kCloseWait, [&] { return queue_->exited; });
}

void AccessLog::set_queue_bytes(std::size_t bytes) {
  if (queue_) queue_->cap.store(bytes, std::memory_order_relaxed);
}

std::uint64_t AccessLog::dropped_lines() const {
  return queue_ ? queue_->dropped.load(std::memory_order_relaxed) : 0;
}

bool AccessLog::flush(std::chrono::milliseconds timeout) {
  if (!queue_) return true;
  std::unique_lock lock(queue_->mutex);
  const std::uint64_t target = queue_->appended;
  queue_->flush_asked = true;
  queue_->wake.notify_one();
  return queue_->progress.wait_for(lock, timeout,
                                   [&] { return queue_->handed >= target || queue_->exited; });
}

void AccessLog::format(const AccessRecord& r, std::string& out) {
  out.clear();
  out.reserve(1024);  // a no-op once the worker's scratch has grown
  out += "{\"time\":\"";
  append_rfc3339(out, r.time_ms);
  out += '"';
  field(out, ",\"requestId\":", r.request_id);
  if (r.trace_id.size() == 32) {
    // 32 hex digits the gateway checked or drew: nothing to escape.
    Chunk c;
    c.put(",\"traceId\":\"");
    c.put(r.trace_id);
    c.put("\"");
    c.flush(out);
  }
  field(out, ",\"method\":", r.method);
  if (!r.host.empty()) field(out, ",\"host\":", r.host);
  field(out, ",\"path\":", r.path);
  if (!r.query.empty()) field(out, ",\"query\":", r.query);
  if (r.protocol == "HTTP/1.1") {
    out += ",\"protocol\":\"HTTP/1.1\"";
  } else if (!r.protocol.empty()) {
    out += ",\"protocol\":";
    core::append_json_string(out, r.protocol, 16);
  }
  status3(out, ",\"status\":", r.status);
  if (!r.route.empty()) field(out, ",\"route\":", r.route);
  if (!r.upstream.empty()) field(out, ",\"upstream\":", r.upstream);
  if (!r.endpoints.empty()) {
    // Addresses the gateway wrote itself (digits, '.', ':', '[', ']', ' '): nothing to escape.
    out += ",\"endpoints\":\"";
    out += r.endpoints.substr(0, AccessLog::kMaxFieldBytes);
    out += '"';
  }
  if (r.upstream_contacted) {
    // Written in as few appends as possible: this runs once per request. Addresses are the
    // gateway's own ("10.0.0.5:8000", "[::1]:8000"): nothing to escape.
    Chunk c;
    c.put(",\"upstream_contacted\":true");
    if (!r.upstream_address.empty() && r.upstream_address.size() <= 64) {
      c.put(",\"upstream_address\":\"");
      c.put(r.upstream_address);
      c.put("\"");
    }
    if (r.upstream_status >= 100 && r.upstream_status <= 999) {
      c.put(",\"upstream_status\":");
      c.status(r.upstream_status);
    }
    if (r.upstream_ms >= 0) c.put(",\"upstream_ms\":");
    c.flush(out);
    if (r.upstream_ms >= 0) millis(out, r.upstream_ms);
  } else {
    out += ",\"upstream_contacted\":false";
  }
  out += ",\"duration_ms\":";
  millis(out, r.duration_ms);
  number(out, ",\"bytes_in\":", static_cast<std::int64_t>(r.bytes_in));
  number(out, ",\"bytes_out\":", static_cast<std::int64_t>(r.bytes_out));
  if (!r.client.empty()) field(out, ",\"client\":", r.client);
  if (!r.forwarded_for.empty()) field(out, ",\"x_forwarded_for\":", r.forwarded_for);
  if (!r.user_agent.empty()) field(out, ",\"user_agent\":", r.user_agent);
  if (!r.error.empty()) field(out, ",\"error\":", r.error);
  if (!r.dialect.empty()) field(out, ",\"dialect\":", r.dialect);
  if (!r.code.empty()) field(out, ",\"code\":", r.code);
  if (!r.subcode.empty()) field(out, ",\"subcode\":", r.subcode);
  if (!r.hidden_detail.empty() && r.detail_cap > 0) {
    out += ",\"upstream_detail\":";
    core::append_json_string(out, r.hidden_detail, r.detail_cap);
  }
  if (!r.tls_version.empty()) field(out, ",\"tls_version\":", r.tls_version);
  if (!r.client_cert.empty()) field(out, ",\"client_cert\":", r.client_cert);
  if (!r.upgrade.empty()) {
    field(out, ",\"upgrade\":", r.upgrade);
    number(out, ",\"tunnel_bytes_up\":", static_cast<std::int64_t>(r.tunnel_bytes_up));
    number(out, ",\"tunnel_bytes_down\":", static_cast<std::int64_t>(r.tunnel_bytes_down));
    out += ",\"tunnel_ms\":";
    millis(out, r.tunnel_ms);
    if (!r.tunnel_close.empty()) field(out, ",\"tunnel_close\":", r.tunnel_close);
  }
  out += '}';
}

void AccessLog::write(const AccessRecord& r, std::string& scratch) {
  if (!queue_) return;
  format(r, scratch);
  scratch += '\n';
  queue_->append(scratch);
}

bool init_diagnostics(std::string_view level) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") return false;
  auto logger = spdlog::stderr_color_mt("problemgate");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
  return true;
}

}  // namespace problemgate::obs
