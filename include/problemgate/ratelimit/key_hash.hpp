#pragma once
#include <array>
#include <cstdint>
#include <string_view>

namespace problemgate::ratelimit {

/// The secret key of the limiter's hash. The process draws one from the OS at start-up (see
/// proxy/runtime.hpp) and hands it to every limiter, so clients cannot pick key values that
/// collide: they never learn how their values map to digests.
struct HashKey {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;

  /// The key from 16 bytes as SipHash reads them (k0 from bytes 0-7, little-endian).
  static HashKey from_bytes(const std::array<std::uint8_t, 16>& bytes) noexcept;
  friend bool operator==(const HashKey&, const HashKey&) = default;
};

/// A 128-bit digest: all a limiter keeps of a key, so every key costs the same whatever its
/// length. At 128 bits, two keys sharing a digest (and so a bucket) is a 2^-64 event even for a
/// table of 2^32 keys.
struct KeyDigest {
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  friend bool operator==(const KeyDigest&, const KeyDigest&) = default;
};

/// SipHash-2-4 with its 128-bit output (Aumasson & Bernstein; reference code and test vectors:
/// github.com/veorq/SipHash), fed in pieces so a key's parts need not be copied together first.
/// A keyed PRF: without the key, outputs cannot be predicted, hence collisions cannot be chosen.
class SipHash128 {
 public:
  explicit SipHash128(const HashKey& key) noexcept;

  void update(std::string_view bytes) noexcept;
  /// The digest of everything fed so far; the hasher is spent afterwards.
  KeyDigest finish() noexcept;

  /// The reference implementation's 16 output bytes: `lo` then `hi`, each little-endian.
  static std::array<std::uint8_t, 16> to_bytes(const KeyDigest& digest) noexcept;

 private:
  void compress(std::uint64_t word) noexcept;
  void rounds(int n) noexcept;

  std::uint64_t v0_, v1_, v2_, v3_;
  std::uint64_t pending_ = 0;    // the bytes of an unfinished word, little-endian
  unsigned pending_len_ = 0;     // 0..7
  std::uint64_t total_len_ = 0;  // only its low byte enters the digest, per the algorithm
};

/// One-shot SipHash-2-4-128 of `bytes`.
KeyDigest siphash128(const HashKey& key, std::string_view bytes) noexcept;

}  // namespace problemgate::ratelimit
