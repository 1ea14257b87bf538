#pragma once
#include <string>
#include <string_view>

namespace problemgate::asio {

/// The system interface under Asio in this build: "io_uring" or "epoll" (cmake/io_uring.cmake).
std::string_view io_backend() noexcept;

/// Empty when the backend can run in this process; else why not. An io_uring build that finds
/// the system calls refused (a container's seccomp profile, kernel.io_uring_disabled) says so
/// here, before any socket is bound, instead of failing inside the first worker.
std::string io_backend_problem();

}  // namespace problemgate::asio
