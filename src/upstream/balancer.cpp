#include "problemgate/upstream/balancer.hpp"

#include <algorithm>

namespace problemgate::upstream {

Balancer::Balancer(boost::asio::any_io_executor ex, std::shared_ptr<Cluster> cluster,
                   config::Upstream settings, std::uint64_t seed)
    : ex_(std::move(ex)),
      cluster_(std::move(cluster)),
      settings_(std::move(settings)),
      rng_(seed | 1),
      budget_(settings_.retries.budget_percent, settings_.retries.budget_reserve) {
  refresh();
}

void Balancer::update(config::Upstream settings) {
  settings_ = std::move(settings);
  budget_.configure(settings_.retries.budget_percent, settings_.retries.budget_reserve);
  for (auto& p : pools_) p->update(settings_);
}

void Balancer::refresh() {
  const auto v = cluster_->version();
  if (v == version_) return;
  version_ = v;
  const auto set = cluster_->endpoints();
  std::vector<std::shared_ptr<UpstreamPool>> next;
  next.reserve(set->size());
  for (const auto& ep : *set) {
    auto it = std::find_if(pools_.begin(), pools_.end(),
                           [&](const auto& p) { return p->endpoint() == ep; });
    next.push_back(it != pools_.end() ? *it
                                      : std::make_shared<UpstreamPool>(ex_, settings_, ep,
                                                                       cluster_->tls_context()));
  }
  for (auto& old : pools_) {
    if (std::find(next.begin(), next.end(), old) == next.end()) old->retire();
  }
  pools_ = std::move(next);
  if (!pools_.empty()) next_ %= pools_.size();
}

bool Balancer::eligible(std::size_t i, std::int64_t now_ns,
                        std::span<const EndpointState* const> tried, bool ignore_health) const {
  const EndpointState* ep = pools_[i]->endpoint().get();
  if (std::find(tried.begin(), tried.end(), ep) != tried.end()) return false;
  return ignore_health || ep->available(now_ns);
}

const std::shared_ptr<UpstreamPool>* Balancer::pick(std::int64_t now_ns,
                                                    std::span<const EndpointState* const> tried,
                                                    bool& panic) {
  refresh();
  panic = false;
  const std::size_t n = pools_.size();
  if (n == 0) return nullptr;
  // The common case, one endpoint that is up: no choice to make.
  if (n == 1 && tried.empty() && pools_[0]->endpoint()->available(now_ns)) return &pools_[0];
  if (auto* p = choose(now_ns, tried, false)) return p;
  // Panic only when nothing at all is available; when the available endpoints were all tried
  // already, there is simply nothing left to retry on.
  for (const auto& p : pools_) {
    if (p->endpoint()->available(now_ns)) return nullptr;
  }
  auto* p = choose(now_ns, tried, true);
  panic = p != nullptr;
  return p;
}

const std::shared_ptr<UpstreamPool>* Balancer::choose(std::int64_t now_ns,
                                                      std::span<const EndpointState* const> tried,
                                                      bool ignore_health) {
  const std::size_t n = pools_.size();
  if (settings_.lb == config::Upstream::Lb::least_request && n > 1) {
    std::size_t candidates = 0;
    for (std::size_t i = 0; i < n; ++i)
      candidates += eligible(i, now_ns, tried, ignore_health) ? 1 : 0;
    if (candidates > 1) {
      // Power of two choices: two distinct random candidates, the one with fewer requests in
      // flight on this worker wins (ties go to the first).
      const std::size_t a = next_random() % candidates;
      std::size_t b = next_random() % (candidates - 1);
      if (b >= a) ++b;
      std::size_t ia = n, ib = n;
      for (std::size_t i = 0, k = 0; i < n; ++i) {
        if (!eligible(i, now_ns, tried, ignore_health)) continue;
        if (k == a) ia = i;
        if (k == b) ib = i;
        ++k;
      }
      return &pools_[pools_[ib]->in_use() < pools_[ia]->in_use() ? ib : ia];
    }
  }
  for (std::size_t step = 0; step < n; ++step) {
    const std::size_t i = next_ + step < n ? next_ + step : next_ + step - n;
    if (!eligible(i, now_ns, tried, ignore_health)) continue;
    next_ = i + 1 < n ? i + 1 : 0;
    return &pools_[i];
  }
  return nullptr;
}

void Balancer::sweep() {
  for (auto& p : pools_) p->sweep();
}

void Balancer::close_idle() {
  for (auto& p : pools_) p->close_idle();
}

void Balancer::retire() {
  for (auto& p : pools_) p->retire();
}

}  // namespace problemgate::upstream
