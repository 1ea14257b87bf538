#include "problemgate/redis/store_client.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "redis/connection.hpp"

namespace problemgate::redis {

namespace net = boost::asio;

namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{2000};
constexpr int kMaxAttempts = 3;  // a NOSCRIPT and another gateway's secret, at most once each

constexpr char kHex[] = "0123456789abcdef";

std::string hex(const std::array<std::uint8_t, 16>& bytes) {
  std::string out(32, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 15];
  }
  return out;
}

std::string_view policy_name(config::RateLimitStore::OnError p) {
  return p == config::RateLimitStore::OnError::allow
             ? "allow (requests are served without rate limits)"
             : "deny (limited routes answer 503)";
}

}  // namespace

std::string secret_to_hex(const ratelimit::HashKey& key) {
  std::array<std::uint8_t, 16> bytes{};
  for (int i = 0; i < 8; ++i) {
    bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(key.k0 >> (8 * i));
    bytes[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(key.k1 >> (8 * i));
  }
  return hex(bytes);
}

std::optional<ratelimit::HashKey> secret_from_hex(std::string_view text) {
  if (text.size() != 32) return std::nullopt;
  std::array<std::uint8_t, 16> bytes{};
  for (std::size_t i = 0; i < 32; ++i) {
    const char c = text[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return std::nullopt;
    bytes[i / 2] = static_cast<std::uint8_t>(bytes[i / 2] | (i % 2 == 0 ? v << 4 : v));
  }
  return ratelimit::HashKey::from_bytes(bytes);
}

//------------------------------------------------------------------------------

void StoreHealth::went_down(std::string_view endpoint, std::string_view reason,
                            config::RateLimitStore::OnError policy) {
  if (down_.fetch_add(1, std::memory_order_relaxed) == 0)
    spdlog::warn("rate_limit_store: redis {} unreachable ({}); on_error: {} until it is back",
                 endpoint, reason, policy_name(policy));
}

void StoreHealth::came_back(std::string_view endpoint) {
  if (down_.fetch_sub(1, std::memory_order_relaxed) == 1)
    spdlog::info("rate_limit_store: redis {} reachable again; limits are enforced", endpoint);
}

//------------------------------------------------------------------------------

class StoreClient::Events final : public ConnectionEvents {
 public:
  explicit Events(StoreClient& c) : client_(c) {}
  void on_ready(std::string_view sha) override { client_.connection_ready(sha); }
  void on_failed(std::string_view reason, bool timed_out) override {
    client_.connection_failed(reason, timed_out);
  }

 private:
  StoreClient& client_;
};

StoreClient::StoreClient(const net::any_io_executor& ex, const config::RateLimitStore& settings,
                         const ratelimit::HashKey& initial_secret, obs::StoreCounters& counters,
                         StoreHealth& health)
    : ex_(ex),
      settings_(settings),
      secret_(initial_secret),
      secret_hex_(secret_to_hex(initial_secret)),
      counters_(counters),
      health_(health),
      events_(std::make_unique<Events>(*this)),
      retry_timer_(ex),
      resolver_(ex) {
  const bool v6 = settings_.host.find(':') != std::string::npos;
  endpoint_ =
      (v6 ? "[" + settings_.host + "]" : settings_.host) + ":" + std::to_string(settings_.port);
  for (std::uint32_t i = 0; i < settings_.pool_size; ++i)
    conns_.push_back(std::make_shared<Connection>(ex_, *events_, counters_, settings_.timeout));
}

StoreClient::~StoreClient() {
  retry_timer_.cancel();
  resolver_.cancel();
  conns_.clear();  // frees the contexts; no check is in flight (each holds the client)
  // Leaving while down: this client no longer counts as a worker that cannot reach the store.
  if (reported_down_) health_.forget();
}

void StoreClient::start() { resolve_and_open(); }

void StoreClient::shutdown() {
  state_ = State::stopped;
  retry_timer_.cancel();
  resolver_.cancel();
  for (auto& c : conns_) c->close();
}

void StoreClient::resolve_and_open() {
  boost::system::error_code ec;
  const auto addr = net::ip::make_address(settings_.host, ec);
  if (!ec) {
    open_all(addr.to_string());
    return;
  }
  // A name: Asio's resolver (getaddrinfo off the event loop), never hiredis's blocking lookup.
  resolver_.async_resolve(
      settings_.host, std::to_string(settings_.port),
      [w = weak_from_this()](const boost::system::error_code& rec,
                             const net::ip::tcp::resolver::results_type& results) {
        auto self = w.lock();
        if (!self || rec == net::error::operation_aborted) return;
        if (rec || results.empty()) {
          self->connection_failed("resolve: " + (rec ? rec.message() : std::string("no address")),
                                  false);
          return;
        }
        self->open_all(results.begin()->endpoint().address().to_string());
      });
}

void StoreClient::open_all(const std::string& ip) {
  const Handshake hs{settings_.username, settings_.password, settings_.db};
  for (auto& c : conns_) {
    if (state_ == State::down) return;  // an earlier one failed at once
    c->open(ip, settings_.port, hs);
  }
}

void StoreClient::connection_ready(std::string_view sha) {
  sha_.assign(sha);
  backoff_ = std::chrono::milliseconds(0);
  if (state_ == State::stopped) return;
  if (state_ == State::starting || state_ == State::probing) state_ = State::up;
  if (reported_down_) {
    reported_down_ = false;
    health_.came_back(endpoint_);
  }
}

void StoreClient::connection_failed(std::string_view reason, bool timed_out) {
  if (state_ == State::down || state_ == State::stopped) return;
  state_ = State::down;
  // Checks queued on the other connections fail now too (their replies may never come), and
  // new ones fail at once until a connection completes its handshake again.
  for (auto& c : conns_) c->close(timed_out);
  backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
  if (!reported_down_) {
    reported_down_ = true;
    health_.went_down(endpoint_, reason, settings_.on_error);
  }
  retry_timer_.expires_after(backoff_);
  retry_timer_.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
    auto self = w.lock();
    if (!self || ec || self->state_ != State::down) return;
    self->state_ = State::probing;
    self->resolve_and_open();
  });
}

Connection* StoreClient::pick() {
  // Round-robin over ready connections; one still connecting will do (commands wait in its
  // buffer until the socket is up) when none is ready.
  const std::size_t n = conns_.size();
  Connection* fallback = nullptr;
  for (std::size_t i = 0; i < n; ++i) {
    Connection* c = conns_[(next_ + i) % n].get();
    if (c->state() == Connection::State::ready) {
      next_ = (next_ + i + 1) % n;
      return c;
    }
    if (!fallback && c->state() == Connection::State::connecting) fallback = c;
  }
  ++next_;
  return fallback;
}

std::string StoreClient::bucket_key(std::string_view route, const ratelimit::LimitKey& key) const {
  ratelimit::SipHash128 h(secret_);
  // As RateLimiter::digest: the kind's byte first.
  const char kind = static_cast<char>(key.kind);
  h.update(std::string_view(&kind, 1));
  h.update(key.text);
  std::string out;
  out.reserve(settings_.key_prefix.size() + route.size() + 36);
  out += settings_.key_prefix;
  out += '{';
  out += route;
  out += ':';
  out += hex(ratelimit::SipHash128::to_bytes(h.finish()));
  out += '}';
  return out;
}

net::awaitable<StoreClient::Result> StoreClient::check(std::string_view route,
                                                       const ratelimit::Gcra& gcra,
                                                       std::chrono::milliseconds window,
                                                       ratelimit::LimitKey key,
                                                       std::optional<std::int64_t> now_us) {
  auto keep = shared_from_this();  // a reload may drop the client while this check waits
  auto count = [&](obs::StoreCheck c) { obs::bump(counters_.checks[static_cast<std::size_t>(c)]); };
  Result res;
  Connection* conn = nullptr;
  const std::string secret_record = secret_key();
  const std::string interval = std::to_string(gcra.interval);
  const std::string capacity = std::to_string(gcra.capacity);
  const std::string expiry = std::to_string(std::max<std::int64_t>(1, window.count()));
  const std::string now = now_us ? std::to_string(*now_us) : std::string();
  auto deadline = steady::now() + settings_.timeout;
  for (int attempt = 0; attempt < kMaxAttempts && accepting(); ++attempt) {
    if (!conn || conn->state() == Connection::State::closed) conn = pick();
    if (!conn) break;
    const std::string bucket = bucket_key(route, key);
    std::vector<std::string_view> argv;
    argv.reserve(10);
    // Until a SCRIPT LOAD answered, the script travels whole (EVAL caches it as well).
    if (sha_.empty())
      argv.insert(argv.end(), {"EVAL", kGcraScript});
    else
      argv.insert(argv.end(), {"EVALSHA", sha_});
    argv.insert(argv.end(), {"2", bucket, secret_record, secret_hex_, interval, capacity, expiry});
    if (now_us) argv.push_back(now);
    // A retry (after a NOSCRIPT, or adopting the shared secret) is one more round trip with a
    // timeout of its own; both happen once per script flush or secret change, not per request.
    if (attempt > 0) deadline = steady::now() + settings_.timeout;
    Outcome out = co_await conn->async_command(std::move(argv), deadline, net::use_awaitable);
    if (out.timed_out) {
      count(obs::StoreCheck::timeout);
      res.status = Result::Status::timeout;
      co_return res;
    }
    switch (out.reply.kind) {
      case GcraReply::Kind::decided:
        res.status = Result::Status::decided;
        res.decision = gcra.decide(out.reply.allowed, out.reply.now_us, out.reply.tat_us);
        count(out.reply.allowed ? obs::StoreCheck::allowed : obs::StoreCheck::limited);
        co_return res;
      case GcraReply::Kind::other_key:
        if (auto k = secret_from_hex(out.reply.key_hex)) {
          // Another gateway set the shared secret first: hash like it does.
          secret_ = *k;
          secret_hex_ = out.reply.key_hex;
          spdlog::debug("rate_limit_store: adopted the shared hashing secret from {}", endpoint_);
          continue;
        }
        break;
      case GcraReply::Kind::noscript:
        // Redis restarted or its script cache was flushed: load it again; the retry is queued
        // right behind the SCRIPT LOAD on the same connection, so it finds the script.
        conn->load_script();
        continue;
      case GcraReply::Kind::error: break;
    }
    spdlog::debug("rate_limit_store: check failed: {}", out.reply.message);
    break;
  }
  count(obs::StoreCheck::error);
  res.status = Result::Status::error;
  co_return res;
}

}  // namespace problemgate::redis
