#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "problemgate/config/config.hpp"
#include "problemgate/obs/metrics.hpp"
#include "problemgate/ratelimit/gcra.hpp"
#include "problemgate/ratelimit/key_hash.hpp"
#include "problemgate/ratelimit/rate_limiter.hpp"

namespace problemgate::redis {

class Connection;

/// Whether the shared store is reachable, across every worker's client. A client that goes
/// down or comes back reports here; the process logs the change once (the first client down,
/// the last one back), not per request or per worker. Thread-safe.
class StoreHealth {
 public:
  void went_down(std::string_view endpoint, std::string_view reason,
                 config::RateLimitStore::OnError policy);
  void came_back(std::string_view endpoint);
  /// A client that was down is gone (a reload replaced it, or the worker stopped): no log.
  void forget() noexcept { down_.fetch_sub(1, std::memory_order_relaxed); }
  /// Some worker cannot reach the store right now.
  bool degraded() const noexcept { return down_.load(std::memory_order_relaxed) != 0; }

 private:
  std::atomic<unsigned> down_{0};
};

/// One worker's client of the Redis rate-limit store: `pool_size` connections on the worker's
/// io_context, checks pipelined on them round-robin.
///
/// Failure handling: a command unanswered at `timeout` closes its connection (Redis stalled);
/// any failure (refused, reset, AUTH refused, stall) takes the client *down*: every connection
/// is closed, checks fail at once without touching the network, and after a backoff (100 ms,
/// doubling to 2 s) the connections are reopened; the first completed handshake brings it back
/// up. So a dead Redis costs a request nothing but the policy, not the timeout.
///
/// Not thread-safe: created, used and destroyed on its worker's thread. Held by shared_ptr
/// (worker snapshots share it across reloads that keep the store settings).
class StoreClient : public std::enable_shared_from_this<StoreClient> {
 public:
  struct Result {
    enum class Status { decided, error, timeout } status = Status::error;
    ratelimit::Decision decision;  ///< when decided
  };

  StoreClient(const boost::asio::any_io_executor& ex, const config::RateLimitStore& settings,
              const ratelimit::HashKey& initial_secret, obs::StoreCounters& counters,
              StoreHealth& health);
  ~StoreClient();
  StoreClient(const StoreClient&) = delete;
  StoreClient& operator=(const StoreClient&) = delete;

  /// Opens the connections (resolving the host first when it is a name).
  void start();
  /// Closes every connection for good (the worker is draining and no request is left): checks
  /// fail from now on, nothing reconnects.
  void shutdown();

  /// One GCRA step for `key` on `route`'s policy (`gcra` in µs, `window` for the expiry). With
  /// `now_us`, the script uses that instead of Redis's clock (tests of the arithmetic only).
  /// Never throws; counts the result in the store counters. `key` is taken by value: a
  /// coroutine's reference parameter would dangle when the caller passed a temporary (the
  /// text it views must still outlive the check, as `route` and `gcra` must).
  boost::asio::awaitable<Result> check(std::string_view route, const ratelimit::Gcra& gcra,
                                       std::chrono::milliseconds window, ratelimit::LimitKey key,
                                       std::optional<std::int64_t> now_us = std::nullopt);

  const config::RateLimitStore& settings() const noexcept { return settings_; }
  /// Whether checks are being sent (false while down, backing off).
  bool accepting() const noexcept { return state_ == State::starting || state_ == State::up; }

  /// The Redis key of `key`'s bucket on `route`: key_prefix + "{route:digest}" (32 hex digits
  /// of the keyed SipHash: every key has the same size whatever the client sent).
  std::string bucket_key(std::string_view route, const ratelimit::LimitKey& key) const;
  /// The key holding the hashing secret every gateway sharing the store uses.
  std::string secret_key() const { return settings_.key_prefix + "{hash_key}"; }

 private:
  class Events;
  friend class Events;
  enum class State { starting, up, down, probing, stopped };

  void open_all(const std::string& ip);
  void resolve_and_open();
  void connection_ready(std::string_view sha);
  void connection_failed(std::string_view reason, bool timed_out);
  Connection* pick();

  boost::asio::any_io_executor ex_;
  config::RateLimitStore settings_;
  ratelimit::HashKey secret_;
  std::string secret_hex_;
  obs::StoreCounters& counters_;
  StoreHealth& health_;
  std::unique_ptr<Events> events_;
  std::vector<std::shared_ptr<Connection>> conns_;
  std::size_t next_ = 0;
  std::string sha_;  // of the script, from SCRIPT LOAD; empty until the first one answered
  State state_ = State::starting;
  bool reported_down_ = false;
  std::chrono::milliseconds backoff_{0};
  boost::asio::steady_timer retry_timer_;
  boost::asio::ip::tcp::resolver resolver_;
  std::string endpoint_;  // host:port, for logs
};

/// 32 lowercase hex digits of a secret (k0 then k1, as SipHash reads its key bytes).
std::string secret_to_hex(const ratelimit::HashKey& key);
std::optional<ratelimit::HashKey> secret_from_hex(std::string_view hex);

}  // namespace problemgate::redis
