#pragma once
#include <cstddef>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "problemgate/problem/normalize.hpp"

namespace problemgate::cli {

/// `normalize --jsonl --report`: what the normalizer made of a batch of captured error bodies, for
/// an operator about to deploy. Counts per dialect and per parent code, the upstream codes that
/// neither the legacy table nor a route rule mapped (they become subcodes as converted), and the
/// bodies nothing recognised (dialects text and empty), which are the ones to look at first.
class MigrationReport {
 public:
  void add(std::size_t line_no, const problem::Input& in, const problem::Output& out);
  void add_bad_line() { ++bad_lines_; }
  void print(std::ostream& os) const;

 private:
  struct Unmapped {
    std::size_t count = 0;
    std::string subcode;  ///< what it became ("" when dropped: numeric, a sentence)
    std::size_t first_line = 0;
  };
  struct Unrecognised {
    std::size_t line_no;
    int status;
    std::string content_type;
    std::string excerpt;
  };

  std::size_t bodies_ = 0;
  std::size_t bad_lines_ = 0;
  std::map<std::string, std::size_t> by_dialect_, by_code_;
  std::map<std::string, Unmapped> unmapped_;
  std::size_t mapped_ = 0;
  std::vector<Unrecognised> unrecognised_;  ///< the first kMaxListed of them
  std::map<std::string, std::size_t> unrecognised_count_;
};

}  // namespace problemgate::cli
