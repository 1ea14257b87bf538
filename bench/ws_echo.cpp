// WebSocket echo origin and load client for bench/ws_bench.py (Boost.Beast, header-only; built
// by that script with g++, not part of the CMake build).
//
//   ws_echo serve                         echo every message back; prints "listening on 127.0.0.1:PORT"
//   ws_echo load PORT CONNS SECONDS SIZE  CONNS connections, each sending SIZE-byte binary
//                                         messages and waiting for the echo, for SECONDS;
//                                         prints {"messages": N, "seconds": S, "errors": E}
//
// The origin runs one thread (like the 1-worker nginx origin of the bench/pgbench harness); the client
// runs two, so neither end is the limit in front of a 1-thread proxy on this 2-core VM.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

namespace {

net::awaitable<void> echo_session(tcp::socket s) {
  websocket::stream<tcp::socket> ws(std::move(s));
  ws.read_message_max(64 * 1024 * 1024);
  auto [ec] = co_await ws.async_accept(kNoThrow);
  if (ec) co_return;
  beast::flat_buffer buf;
  for (;;) {
    auto [rec, n] = co_await ws.async_read(buf, kNoThrow);
    if (rec) co_return;
    ws.binary(ws.got_binary());
    auto [wec, m] = co_await ws.async_write(buf.data(), kNoThrow);
    if (wec) co_return;
    buf.consume(buf.size());
  }
}

net::awaitable<void> accept_loop(tcp::acceptor& a) {
  for (;;) {
    auto [ec, s] = co_await a.async_accept(kNoThrow);
    if (ec) co_return;
    s.set_option(tcp::no_delay(true));
    net::co_spawn(a.get_executor(), echo_session(std::move(s)), net::detached);
  }
}

struct Totals {
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> errors{0};
};

net::awaitable<void> load_one(unsigned short port, std::size_t size,
                              std::chrono::steady_clock::time_point until, Totals& t) {
  auto ex = co_await net::this_coro::executor;
  websocket::stream<tcp::socket> ws(ex);
  auto [cec] =
      co_await ws.next_layer().async_connect({net::ip::make_address("127.0.0.1"), port}, kNoThrow);
  if (cec) {
    ++t.errors;
    co_return;
  }
  ws.next_layer().set_option(tcp::no_delay(true));
  ws.read_message_max(64 * 1024 * 1024);
  auto [hec] = co_await ws.async_handshake("127.0.0.1:" + std::to_string(port), "/echo", kNoThrow);
  if (hec) {
    ++t.errors;
    co_return;
  }
  ws.binary(true);
  std::string msg(size, 'm');
  beast::flat_buffer buf;
  std::uint64_t n = 0;
  while (std::chrono::steady_clock::now() < until) {
    msg[n % size] = static_cast<char>('a' + n % 26);
    auto [wec, w] = co_await ws.async_write(net::buffer(msg), kNoThrow);
    if (wec) {
      ++t.errors;
      co_return;
    }
    auto [rec, r] = co_await ws.async_read(buf, kNoThrow);
    if (rec || buf.size() != size ||
        std::memcmp(buf.data().data(), msg.data(), size) != 0) {  // an echo is checked, not trusted
      ++t.errors;
      co_return;
    }
    buf.consume(buf.size());
    ++n;
  }
  t.messages += n;
  auto [closed] = co_await ws.async_close(websocket::close_code::normal, kNoThrow);
  (void)closed;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "serve") {
    net::io_context ioc(1);
    tcp::acceptor a(ioc, {net::ip::make_address("127.0.0.1"), 0});
    std::printf("listening on 127.0.0.1:%u\n", a.local_endpoint().port());
    std::fflush(stdout);
    net::co_spawn(ioc, accept_loop(a), net::detached);
    ioc.run();
    return 0;
  }
  if (argc == 6 && std::string(argv[1]) == "load") {
    const auto port = static_cast<unsigned short>(std::atoi(argv[2]));
    const int conns = std::atoi(argv[3]);
    const double seconds = std::atof(argv[4]);
    const auto size = static_cast<std::size_t>(std::atol(argv[5]));
    Totals t;
    net::io_context ioc;
    const auto start = std::chrono::steady_clock::now();
    const auto until = start + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
    for (int i = 0; i < conns; ++i)
      net::co_spawn(ioc, load_one(port, size, until, t), net::detached);
    std::thread second([&] { ioc.run(); });
    ioc.run();
    second.join();
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("{\"messages\": %llu, \"seconds\": %.3f, \"errors\": %llu}\n",
                static_cast<unsigned long long>(t.messages.load()), took,
                static_cast<unsigned long long>(t.errors.load()));
    return 0;
  }
  std::fprintf(stderr, "usage: ws_echo serve | ws_echo load PORT CONNS SECONDS SIZE\n");
  return 2;
}
