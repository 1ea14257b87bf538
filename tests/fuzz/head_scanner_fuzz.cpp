// libFuzzer target for the raw-bytes head validator (src/http1/head_scanner.cpp).
//
// Properties, beyond "no crash, no out-of-bounds read, no UB" (ASan + UBSan):
//  1. The scanner is deterministic and only looks at `buf`: a verdict on a prefix that ends
//     after the head is the same as on the whole input.
//  2. An `ok` request head also parses with Beast's request_parser, and both agree on the
//     framing (chunked or not, the Content-Length), on the start line (method, target; status,
//     reason) and on every field: the spans the proxy forwards from are, in order, exactly the
//     names and values Beast parses. The scanner is the proxy's only head parser, so Beast is
//     the independent second opinion here.
//  3. The same for an `ok` response head with Beast's response_parser.
//  4. `head_bytes` of an ok verdict lies within the input and ends with CRLFCRLF.
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <utility>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "problemgate/http1/head_scanner.hpp"

namespace http = boost::beast::http;
using problemgate::http1::HeadLimits;
using problemgate::http1::HeadScan;
using problemgate::http1::HeadVerdict;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "property violated: %s\n", what);
  std::abort();
}

void check_head_bytes(std::string_view in, const HeadScan& s) {
  if (s.head_bytes < 4 || s.head_bytes > in.size()) fail("head_bytes out of range");
  if (in.substr(s.head_bytes - 4, 4) != "\r\n\r\n") fail("head does not end with CRLFCRLF");
}

template <bool isRequest>
void check_with_beast(std::string_view in, const HeadScan& s,
                      const std::vector<problemgate::http1::FieldSpan>& spans) {
  check_head_bytes(in, s);
  http::parser<isRequest, http::empty_body> p;
  p.header_limit(static_cast<std::uint32_t>(s.head_bytes + 1));
  p.eager(false);
  p.body_limit(boost::none);               // as the session does: body limits are its own (413)
  if constexpr (!isRequest) p.skip(true);  // only the head matters here
  boost::beast::error_code ec;
  const std::string_view head = in.substr(0, s.head_bytes);
  const auto used = p.put(boost::asio::buffer(head.data(), head.size()), ec);
  if (ec && ec != http::error::need_more && ec != http::error::need_buffer) {
    std::fprintf(stderr, "beast: %s\n", ec.message().c_str());
    fail("the scanner accepted a head that Beast rejects");
  }
  if (!p.is_header_done()) fail("the scanner accepted a head that Beast did not finish");
  if (used != s.head_bytes) fail("Beast and the scanner disagree on the head's length");
  if (p.chunked() != s.chunked) fail("Beast and the scanner disagree on chunked");
  const auto cl = p.content_length();
  if (s.has_content_length) {
    if (!cl || *cl != s.content_length) fail("Beast and the scanner disagree on Content-Length");
  } else if (!s.chunked && cl && *cl != 0 && isRequest) {
    fail("Beast sees a Content-Length the scanner missed");
  }
  const auto& h = p.get();
  if constexpr (isRequest) {
    if (h.method_string() != head.substr(0, s.method_len)) fail("method differs from Beast's");
    if (h.target() != head.substr(s.target_off, s.target_len)) fail("target differs from Beast's");
  } else {
    if (static_cast<int>(h.result_int()) != s.status) fail("status differs from Beast's");
    if (h.reason() != head.substr(s.reason_off, s.reason_len) && s.reason_len != 0)
      fail("reason differs from Beast's");
  }
  // Beast groups lines of the same name together; the scanner keeps the wire order. Both keep
  // the order among lines of one name, which is the order that carries meaning (RFC 9110 §5.3),
  // so compare the two lists stably sorted by lower-cased name.
  using Line = std::pair<std::string, std::string>;
  auto lower = [](std::string_view v) {
    std::string out(v);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  std::vector<Line> theirs, ours;
  for (const auto& f : h) theirs.emplace_back(lower(f.name_string()), std::string(f.value()));
  for (const auto& sp : spans)
    ours.emplace_back(lower(head.substr(sp.name_off, sp.name_len)),
                      std::string(head.substr(sp.value_off, sp.value_len)));
  auto by_name = [](const Line& a, const Line& b) { return a.first < b.first; };
  std::stable_sort(theirs.begin(), theirs.end(), by_name);
  std::stable_sort(ours.begin(), ours.end(), by_name);
  if (theirs != ours) fail("the scanner's fields differ from Beast's");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Exactly-sized copy: any read past the end is an ASan report.
  char* buf = static_cast<char*>(std::malloc(size ? size : 1));
  if (size) std::memcpy(buf, data, size);
  const std::string_view in(buf, size);
  // Small limits so the fuzzer reaches them; the defaults too.
  for (const HeadLimits limits : {HeadLimits{64, 256, 8}, HeadLimits{}}) {
    std::vector<problemgate::http1::FieldSpan> spans;
    const HeadScan rq = problemgate::http1::scan_request_head(in, limits, &spans);
    if (rq.verdict == HeadVerdict::ok) {
      check_with_beast<true>(in, rq, spans);
      const HeadScan again =
          problemgate::http1::scan_request_head(in.substr(0, rq.head_bytes), limits);
      if (again.verdict != HeadVerdict::ok || again.head_bytes != rq.head_bytes)
        fail("request verdict depends on bytes after the head");
    }
    const HeadScan rs = problemgate::http1::scan_response_head(in, limits, &spans);
    if (rs.verdict == HeadVerdict::ok) {
      check_with_beast<false>(in, rs, spans);
      if (rs.verdict == HeadVerdict::not_implemented) fail("response scans never say 501");
    }
  }
  std::free(buf);
  return 0;
}
