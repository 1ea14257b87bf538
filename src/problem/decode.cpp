#include "problem/decode.hpp"

#include <zlib.h>

#include <climits>

#include "problem/code_case.hpp"

namespace problemgate::problem::internal {

Encoding parse_encoding(std::string_view content_encoding) noexcept {
  auto ce = trim(content_encoding);
  if (ce.empty() || iequals(ce, "identity")) return Encoding::identity;
  if (iequals(ce, "gzip") || iequals(ce, "x-gzip")) return Encoding::gzip;
  if (iequals(ce, "deflate")) return Encoding::deflate;
  return Encoding::unsupported;
}

namespace {

DecodeStatus inflate_with(std::string_view in, int window_bits, std::size_t cap, std::string& out) {
  out.clear();
  z_stream zs{};
  if (inflateInit2(&zs, window_bits) != Z_OK) return DecodeStatus::corrupt;
  // Bodies are at most a few MiB (the proxy's body limit), so uInt never truncates in practice;
  // still feed in chunks to stay correct.
  const auto* next = reinterpret_cast<const Bytef*>(in.data());
  std::size_t left = in.size();
  char buf[16 * 1024];
  int rc = Z_OK;
  DecodeStatus status = DecodeStatus::corrupt;
  while (true) {
    if (zs.avail_in == 0 && left > 0) {
      const auto chunk = static_cast<uInt>(left > UINT_MAX ? UINT_MAX : left);
      zs.next_in = const_cast<Bytef*>(next);
      zs.avail_in = chunk;
      next += chunk;
      left -= chunk;
    }
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    const std::size_t produced = sizeof buf - zs.avail_out;
    if (out.size() + produced > cap) {
      status = DecodeStatus::too_large;
      break;
    }
    out.append(buf, produced);
    if (rc == Z_STREAM_END) {
      status = DecodeStatus::ok;
      break;
    }
    if (rc != Z_OK || (produced == 0 && zs.avail_in == 0 && left == 0))
      break;  // error or truncated
  }
  inflateEnd(&zs);
  return status;
}

}  // namespace

DecodeStatus inflate_body(std::string_view in, Encoding encoding, std::size_t cap,
                          std::string& out) {
  if (encoding == Encoding::gzip) return inflate_with(in, 16 + MAX_WBITS, cap, out);
  auto status = inflate_with(in, MAX_WBITS, cap, out);
  if (status == DecodeStatus::corrupt) status = inflate_with(in, -MAX_WBITS, cap, out);
  return status;
}

}  // namespace problemgate::problem::internal
