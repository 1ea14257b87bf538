#include "problemgate/asio/backend.hpp"

#if defined(BOOST_ASIO_HAS_IO_URING) && defined(BOOST_ASIO_DISABLE_EPOLL)
#include <liburing.h>

#include <cstring>
#define PROBLEMGATE_ASIO_IO_URING 1
#endif

namespace problemgate::asio {

#if defined(PROBLEMGATE_ASIO_IO_URING)

std::string_view io_backend() noexcept { return "io_uring"; }

std::string io_backend_problem() {
  io_uring ring;
  const int r = io_uring_queue_init(8, &ring, 0);
  if (r == 0) {
    io_uring_queue_exit(&ring);
    return {};
  }
  return std::string("this build uses io_uring, which this system refuses (io_uring_setup: ") +
         std::strerror(-r) +
         "): allow it (sysctl kernel.io_uring_disabled=0; a container's seccomp profile must "
         "permit io_uring_setup, io_uring_enter and io_uring_register), or build with "
         "-DPROBLEMGATE_IO_URING=OFF";
}

#else

std::string_view io_backend() noexcept { return "epoll"; }

std::string io_backend_problem() { return {}; }

#endif

}  // namespace problemgate::asio
