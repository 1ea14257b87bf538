#include "problemgate/obs/access_log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "problemgate/core/json_escape.hpp"

namespace problemgate::obs {

namespace {

/// stdout through stdio's buffer, flushed by spdlog's periodic flusher (and on exit) instead
/// of after every line as spdlog's own stdout sink does: one write(2) per request would be a
/// syscall under a lock shared by every worker.
class BufferedStdoutSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  BufferedStdoutSink() { std::setvbuf(stdout, nullptr, _IOFBF, 64 * 1024); }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::fwrite(msg.payload.data(), 1, msg.payload.size(), stdout);
    std::fputc('\n', stdout);
  }
  void flush_() override { std::fflush(stdout); }
};

// `key` is the member's whole prefix, `,"name":` (one append per member, not three).
void field(std::string& out, std::string_view key, std::string_view value) {
  out += key;
  core::append_json_string(out, value, AccessLog::kMaxFieldBytes);
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

void iso_time(std::string& out, std::int64_t ms) {
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
  const char tail[6] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                        static_cast<char>('0' + frac % 10), 'Z', '\0'};
  out.append(tail, 5);
}

}  // namespace

AccessLog::AccessLog(bool enabled) {
  if (!enabled) return;
  auto sink = std::make_shared<BufferedStdoutSink>();
  logger_ = std::make_shared<spdlog::logger>("access", std::move(sink));
  logger_->set_pattern("%v");
  logger_->set_level(spdlog::level::info);
  // Lines are buffered and flushed at least once a second (nginx's `buffer= flush=1s`): one
  // write per request would cost a syscall under a lock shared by every worker.
  spdlog::register_logger(logger_);
  spdlog::flush_every(std::chrono::seconds(1));
}

AccessLog::~AccessLog() {
  if (logger_) {
    logger_->flush();
    spdlog::drop("access");
  }
}

void AccessLog::format(const AccessRecord& r, std::string& out) {
  out.clear();
  out += "{\"time\":\"";
  iso_time(out, r.time_ms);
  out += '"';
  field(out, ",\"requestId\":", r.request_id);
  field(out, ",\"method\":", r.method);
  field(out, ",\"path\":", r.path);
  number(out, ",\"status\":", r.status);
  if (!r.route.empty()) field(out, ",\"route\":", r.route);
  if (!r.upstream.empty()) field(out, ",\"upstream\":", r.upstream);
  out += ",\"duration_ms\":";
  millis(out, r.duration_ms);
  number(out, ",\"bytes_in\":", static_cast<std::int64_t>(r.bytes_in));
  number(out, ",\"bytes_out\":", static_cast<std::int64_t>(r.bytes_out));
  if (!r.client.empty()) field(out, ",\"client\":", r.client);
  if (!r.user_agent.empty()) field(out, ",\"user_agent\":", r.user_agent);
  if (!r.error.empty()) field(out, ",\"error\":", r.error);
  if (!r.dialect.empty()) field(out, ",\"dialect\":", r.dialect);
  if (!r.code.empty()) field(out, ",\"code\":", r.code);
  if (!r.subcode.empty()) field(out, ",\"subcode\":", r.subcode);
  if (!r.hidden_detail.empty()) field(out, ",\"upstream_detail\":", r.hidden_detail);
  out += '}';
}

void AccessLog::write(const AccessRecord& r, std::string& scratch) {
  if (!logger_) return;
  format(r, scratch);
  logger_->log(spdlog::source_loc{}, spdlog::level::info, spdlog::string_view_t(scratch.data(), scratch.size()));
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
