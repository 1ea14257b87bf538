#include "problemgate/ratelimit/key_hash.hpp"

#include <bit>

namespace problemgate::ratelimit {

namespace {

// Byte by byte rather than memcpy: right on any endianness, and compilers turn it into one load.
std::uint64_t load_le64(const unsigned char* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void store_le64(std::uint64_t v, std::uint8_t* out) noexcept {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

}  // namespace

HashKey HashKey::from_bytes(const std::array<std::uint8_t, 16>& bytes) noexcept {
  return {load_le64(bytes.data()), load_le64(bytes.data() + 8)};
}

SipHash128::SipHash128(const HashKey& key) noexcept
    : v0_(key.k0 ^ 0x736f6d6570736575ull),
      v1_(key.k1 ^ 0x646f72616e646f6dull ^ 0xee),  // 0xee: the 128-bit output variant
      v2_(key.k0 ^ 0x6c7967656e657261ull),
      v3_(key.k1 ^ 0x7465646279746573ull) {}

void SipHash128::rounds(int n) noexcept {
  for (int i = 0; i < n; ++i) {
    v0_ += v1_;
    v1_ = std::rotl(v1_, 13);
    v1_ ^= v0_;
    v0_ = std::rotl(v0_, 32);
    v2_ += v3_;
    v3_ = std::rotl(v3_, 16);
    v3_ ^= v2_;
    v0_ += v3_;
    v3_ = std::rotl(v3_, 21);
    v3_ ^= v0_;
    v2_ += v1_;
    v1_ = std::rotl(v1_, 17);
    v1_ ^= v2_;
    v2_ = std::rotl(v2_, 32);
  }
}

void SipHash128::compress(std::uint64_t word) noexcept {
  v3_ ^= word;
  rounds(2);
  v0_ ^= word;
}

void SipHash128::update(std::string_view bytes) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t n = bytes.size();
  total_len_ += n;
  // Top up an unfinished word first, so whole words below come straight from the input.
  while (pending_len_ != 0 && n != 0) {
    pending_ |= std::uint64_t{*p++} << (8 * pending_len_);
    --n;
    if (++pending_len_ == 8) {
      compress(pending_);
      pending_ = 0;
      pending_len_ = 0;
    }
  }
  for (; n >= 8; p += 8, n -= 8) compress(load_le64(p));
  for (; n != 0; --n) pending_ |= std::uint64_t{*p++} << (8 * pending_len_++);
}

KeyDigest SipHash128::finish() noexcept {
  compress(pending_ | (total_len_ << 56));
  v2_ ^= 0xee;
  rounds(4);
  KeyDigest d;
  d.lo = v0_ ^ v1_ ^ v2_ ^ v3_;
  v1_ ^= 0xdd;
  rounds(4);
  d.hi = v0_ ^ v1_ ^ v2_ ^ v3_;
  return d;
}

std::array<std::uint8_t, 16> SipHash128::to_bytes(const KeyDigest& digest) noexcept {
  std::array<std::uint8_t, 16> out{};
  store_le64(digest.lo, out.data());
  store_le64(digest.hi, out.data() + 8);
  return out;
}

KeyDigest siphash128(const HashKey& key, std::string_view bytes) noexcept {
  SipHash128 h(key);
  h.update(bytes);
  return h.finish();
}

}  // namespace problemgate::ratelimit
