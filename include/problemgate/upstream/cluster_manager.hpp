#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "problemgate/upstream/cluster.hpp"

namespace problemgate::upstream {

/// The background work of every Cluster, off the workers: one thread re-resolves DNS names
/// every `resolve` (blocking lookups are fine there), another runs the active health checks
/// (one checker per upstream for the whole process, each round probing every endpoint at
/// once). Clusters are held weakly: one dropped by a reload stops being resolved and checked.
/// Thread-safe.
class ClusterManager {
 public:
  ClusterManager();
  ~ClusterManager();
  ClusterManager(const ClusterManager&) = delete;
  ClusterManager& operator=(const ClusterManager&) = delete;

  /// Starts resolving and checking `cluster` (as its settings say; nothing when neither applies).
  void watch(const std::shared_ptr<Cluster>& cluster);

 private:
  void resolve_loop();

  struct Watched {
    std::weak_ptr<Cluster> cluster;
    std::chrono::steady_clock::time_point due;
  };
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<Watched> resolving_;  // guarded by mutex_
  boost::asio::io_context checks_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      checks_.get_executor()};
  std::thread resolver_;
  std::thread checker_;
};

}  // namespace problemgate::upstream
