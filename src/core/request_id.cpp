#include "problemgate/core/request_id.hpp"

#include <array>

#include "problemgate/core/trace_context.hpp"

namespace problemgate::core {

bool is_valid_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

RequestIdGenerator::RequestIdGenerator(const Clock& clock) : clock_(clock) {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd()};
  rng_.seed(seq);
}

void RequestIdGenerator::next(std::string& out) {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  const auto ms = static_cast<std::uint64_t>(clock_.now_ms()) & ((std::uint64_t{1} << 48) - 1);
  const std::uint64_t r1 = rng_();
  const std::uint64_t r2 = rng_();
  // 128 bits: 48 time bits then 80 random bits; 26 base32 chars encode 130 bits, the first
  // char carries only the top 3 bits (ULID spec).
  const std::uint64_t hi = (ms << 16) | (r1 >> 48);     // bits 127..64
  const std::uint64_t lo = (r1 << 16) | (r2 & 0xFFFF);  // bits 63..0
  out.assign("req_");
  std::array<char, 26> buf{};
  for (int i = 25; i >= 0; --i) {
    const int bit = (25 - i) * 5;  // position of the lowest bit of this char
    std::uint64_t v;
    if (bit + 5 <= 64) {
      v = (lo >> bit) & 0x1F;
    } else if (bit >= 64) {
      v = (hi >> (bit - 64)) & 0x1F;
    } else {
      v = ((lo >> bit) | (hi << (64 - bit))) & 0x1F;
    }
    buf[static_cast<std::size_t>(i)] = kAlphabet[v];
  }
  out.append(buf.data(), buf.size());
}

void RequestIdGenerator::next_trace(char* trace_id32, char* span_id16) noexcept {
  const std::uint64_t r1 = rng_();
  const std::uint64_t r2 = rng_();
  random_hex_id(r1, r2, trace_id32, 16);
  next_span(span_id16);
}

void RequestIdGenerator::next_span(char* span_id16) noexcept {
  random_hex_id(rng_(), 0, span_id16, 8);
}

}  // namespace problemgate::core
