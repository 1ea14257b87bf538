#include "proxy/hop_by_hop.hpp"

#include <doctest/doctest.h>

namespace http = boost::beast::http;

TEST_SUITE("proxy.hop_by_hop") {
  TEST_CASE("standard hop-by-hop fields and those named in Connection go") {
    http::fields f;
    f.set("Connection", "keep-alive, X-Secret");
    f.insert("Connection", "Upgrade");
    f.set("Keep-Alive", "timeout=5");
    f.set("Proxy-Connection", "keep-alive");
    f.set("TE", "trailers");
    f.set("Trailer", "X-T");
    f.set("Transfer-Encoding", "chunked");
    f.set("Upgrade", "websocket");
    f.set("X-Secret", "1");
    f.set("X-Keep", "2");
    problemgate::proxy::strip_hop_by_hop(f);
    for (auto name : {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
                      "Transfer-Encoding", "Upgrade", "X-Secret"}) {
      CHECK_MESSAGE(f.find(name) == f.end(), name);
    }
    CHECK(f["X-Keep"] == "2");
  }
}
