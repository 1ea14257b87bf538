#pragma once
#include <cstddef>
#include <string_view>
#include <vector>

// Repeated member names in a JSON object (RFC 8259 §4 leaves their meaning open; every look-up
// in this module takes the first).
namespace problemgate::problem::internal {

/// For each of `names` (in document order), whether it is the first of its name.
///
/// At most n log2 n + n name comparisons, whatever the names: a sort, not a hash set, because std::hash is
/// unseeded and an upstream could choose thousands of names that share a bucket, making a hash set
/// as quadratic as the per-name linear scan this replaces (issue 24, finding 6).
/// `comparisons`, when given, is increased by the number of name comparisons made: the
/// deterministic work measure of the work-bound guard test.
std::vector<bool> first_of_each_name(const std::vector<std::string_view>& names,
                                     std::size_t* comparisons = nullptr);

}  // namespace problemgate::problem::internal
