#include "problemgate/http1/deadline_socket.hpp"
#include "support/loopback.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <optional>
#include <thread>

using problemgate::http1::DeadlineSocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

/// A connected loopback pair whose peer never writes: a read on `ds` only ends by cancellation.
/// Deadlines here are either tiny (must fire) or 60 s (must not fire within the test), so
/// the outcomes do not depend on how fast the machine is.
struct Pair {
  net::io_context ioc;
  tcp::acceptor acceptor = problemgate::test::loopback_acceptor(ioc);
  tcp::socket peer{ioc};
  std::optional<DeadlineSocket> ds;
  std::optional<boost::system::error_code> result;
  char byte = 0;

  Pair() {
    auto [client, accepted] = problemgate::test::loopback_pair(ioc, acceptor);
    peer = std::move(accepted);
    ds.emplace(std::move(client));
  }
  void start_read() {
    ds->socket().async_read_some(net::buffer(&byte, 1), [this](const boost::system::error_code& ec,
                                                               std::size_t) { result = ec; });
  }
  /// Runs until the read completed or `limit` passed.
  void run_until_done(std::chrono::steady_clock::duration limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!result && std::chrono::steady_clock::now() < end) ioc.run_one_for(10ms);
  }
};

}  // namespace

TEST_SUITE("http1.deadline_socket") {
  TEST_CASE("a passed deadline cancels the pending read and reports timed_out") {
    Pair p;
    p.ds->arm(20ms);
    p.start_read();
    p.run_until_done(30s);
    REQUIRE(p.result);
    CHECK(*p.result == net::error::operation_aborted);
    CHECK(p.ds->timed_out());
    CHECK(p.ds->socket().is_open());  // open: the owner can still answer 408 / 504
  }

  TEST_CASE("moving the deadline later: the earlier wait does not cancel") {
    Pair p;
    p.ds->arm(20ms);
    p.ds->arm(60s);
    p.start_read();
    p.run_until_done(300ms);  // the 20 ms wait has fired by now and re-waited
    CHECK_FALSE(p.result);
    CHECK_FALSE(p.ds->timed_out());
  }

  TEST_CASE("moving the deadline earlier re-arms the timer") {
    Pair p;
    p.ds->arm(60s);
    p.ds->arm(20ms);
    p.start_read();
    p.run_until_done(30s);
    REQUIRE(p.result);
    CHECK(*p.result == net::error::operation_aborted);
    CHECK(p.ds->timed_out());
  }

  TEST_CASE("disarm: nothing is cancelled") {
    Pair p;
    p.ds->arm(20ms);
    p.ds->disarm();
    p.start_read();
    p.run_until_done(300ms);
    CHECK_FALSE(p.result);
    CHECK_FALSE(p.ds->timed_out());
  }

  TEST_CASE("a new phase clears timed_out and gets its own deadline") {
    Pair p;
    p.ds->arm(10ms);
    p.start_read();
    p.run_until_done(30s);
    REQUIRE(p.ds->timed_out());
    p.result.reset();
    p.ds->arm(60s);
    CHECK_FALSE(p.ds->timed_out());
    p.start_read();
    p.run_until_done(300ms);
    CHECK_FALSE(p.result);
  }

  TEST_CASE("destroying it releases the socket without waiting for the deadline") {
    Pair p;
    p.ds->arm(60s);
    p.ds.reset();  // the timer wait is cancelled, its handler runs on the next poll
    p.ioc.poll();
    // The peer sees the connection closed once the state (and its socket) is gone.
    p.peer.non_blocking(true);
    char b;
    boost::system::error_code ec;
    for (int i = 0; i < 100 && !ec; ++i) {
      p.ioc.poll();
      p.peer.read_some(net::buffer(&b, 1), ec);
      if (ec == net::error::would_block) {
        ec = {};
        std::this_thread::sleep_for(10ms);
      }
    }
    CHECK(ec == net::error::eof);
  }
}
