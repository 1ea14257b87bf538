#include "problem/member_names.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>

namespace problemgate::problem::internal {

std::vector<bool> first_of_each_name(const std::vector<std::string_view>& names,
                                     std::size_t* comparisons) {
  std::size_t compared = 0;
  // Positions ordered by name; a stable sort keeps equal names in document order, so the first of
  // each run of equal names is the first occurrence. Merge sort: at most n log2 n comparisons.
  std::vector<std::uint32_t> order(names.size());
  std::iota(order.begin(), order.end(), std::uint32_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    ++compared;
    return names[a] < names[b];
  });

  std::vector<bool> first(names.size(), false);
  for (std::size_t k = 0; k < order.size(); ++k) {
    if (k > 0) ++compared;
    if (k == 0 || names[order[k]] != names[order[k - 1]]) first[order[k]] = true;
  }
  if (comparisons) *comparisons += compared;
  return first;
}

}  // namespace problemgate::problem::internal
