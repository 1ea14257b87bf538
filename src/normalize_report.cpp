#include "normalize_report.hpp"

#include <algorithm>
#include <iomanip>

namespace problemgate::cli {

namespace {

/// Listed by name at most; the rest are counted.
constexpr std::size_t kMaxListed = 50;
constexpr std::size_t kExcerptBytes = 60;

/// The start of a body on one line, control bytes as spaces; cut on a UTF-8 boundary.
std::string excerpt(std::string_view body) {
  std::string out;
  for (char c : body) {
    if (out.size() >= kExcerptBytes && (static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      out += "...";
      break;
    }
    out.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  }
  return out;
}

void print_counts(std::ostream& os, const char* heading,
                  const std::map<std::string, std::size_t>& counts, std::size_t total) {
  std::vector<std::pair<std::string, std::size_t>> rows(counts.begin(), counts.end());
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  os << heading << "\n";
  for (const auto& [name, n] : rows) {
    os << "  " << std::left << std::setw(26) << name << std::right << std::setw(7) << n
       << std::setw(7) << std::fixed << std::setprecision(1)
       << (total ? 100.0 * static_cast<double>(n) / static_cast<double>(total) : 0.0) << "%\n";
  }
}

}  // namespace

void MigrationReport::add(std::size_t line_no, const problem::Input& in,
                          const problem::Output& out) {
  ++bodies_;
  const std::string dialect(problem::dialect_name(out.dialect));
  ++by_dialect_[dialect];
  ++by_code_[out.code];
  if (!out.upstream_code.empty()) {
    if (out.code_mapped) {
      ++mapped_;
    } else {
      auto& u = unmapped_[out.upstream_code];
      if (u.count++ == 0) {
        u.subcode = out.subcode;
        u.first_line = line_no;
      }
    }
  }
  if (out.dialect == problem::Dialect::text || out.dialect == problem::Dialect::empty) {
    ++unrecognised_count_[dialect];
    if (unrecognised_.size() < kMaxListed)
      unrecognised_.push_back({line_no, in.status, std::string(in.content_type), excerpt(in.body)});
  }
}

void MigrationReport::print(std::ostream& os) const {
  os << "\n# problemgate normalize report\n"
     << bodies_ << " bodies normalized, " << bad_lines_ << " bad input lines\n\n";
  print_counts(os, "by dialect:", by_dialect_, bodies_);
  os << "\n";
  print_counts(os, "by parent code:", by_code_, bodies_);

  // Codes that became subcodes as converted (the ones to review or map), and codes that gave
  // none (numbers, sentences, the status's reason phrase again), each most frequent first.
  std::vector<std::pair<std::string, Unmapped>> kept, dropped;
  for (const auto& row : unmapped_) (row.second.subcode.empty() ? dropped : kept).push_back(row);
  const auto by_count = [](const auto& a, const auto& b) {
    return a.second.count > b.second.count;
  };
  std::stable_sort(kept.begin(), kept.end(), by_count);
  std::stable_sort(dropped.begin(), dropped.end(), by_count);
  std::size_t kept_bodies = 0, dropped_bodies = 0;
  for (const auto& r : kept) kept_bodies += r.second.count;
  for (const auto& r : dropped) dropped_bodies += r.second.count;
  const auto table = [&os](const std::vector<std::pair<std::string, Unmapped>>& rows,
                           bool with_subcode) {
    os << "  " << std::left << std::setw(7) << "count" << std::setw(8) << "line"
       << (with_subcode ? "upstream code -> subcode\n" : "upstream code\n");
    for (std::size_t i = 0; i < rows.size() && i < kMaxListed; ++i) {
      const auto& [code, u] = rows[i];
      os << "  " << std::left << std::setw(7) << u.count << std::setw(8) << u.first_line
         << excerpt(code);
      if (with_subcode) os << " -> " << u.subcode;
      os << "\n";
    }
    if (rows.size() > kMaxListed) os << "  ... and " << rows.size() - kMaxListed << " more codes\n";
  };
  os << "\nupstream codes mapped by the legacy table or a rule: " << mapped_ << " bodies\n";
  os << "\nupstream codes not mapped, kept as subcodes: " << kept.size() << " codes in "
     << kept_bodies << " bodies\n";
  table(kept, true);
  os << "\nupstream codes not mapped, giving no subcode (numbers, sentences, the status again): "
     << dropped.size() << " codes in " << dropped_bodies << " bodies\n";
  table(dropped, false);

  std::size_t unrecognised = 0;
  for (const auto& [d, n] : unrecognised_count_) unrecognised += n;
  os << "\nbodies no dialect recognised (text, empty): " << unrecognised << "\n";
  for (const auto& u : unrecognised_)
    os << "  line " << u.line_no << ": " << u.status << " "
       << (u.content_type.empty() ? "(no content type)" : u.content_type) << "  "
       << (u.excerpt.empty() ? "(empty body)" : u.excerpt) << "\n";
  if (unrecognised > unrecognised_.size())
    os << "  ... and " << unrecognised - unrecognised_.size() << " more\n";
  os << std::right;
}

}  // namespace problemgate::cli
