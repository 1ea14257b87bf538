# The I/O backend under Asio: io_uring (fewer system calls: submissions and completions are
# batched through shared rings) or epoll. PROBLEMGATE_IO_URING:
#   AUTO  io_uring when liburing is installed and this machine's kernel lets a process set up a
#         ring (a probe is run); epoll otherwise, e.g. inside a container whose seccomp profile
#         refuses the io_uring system calls.
#   ON    io_uring, or fail here.
#   OFF   epoll.
# The result is PROBLEMGATE_USE_IO_URING, which src/asio/CMakeLists.txt applies to every target
# that includes Asio (the choice changes Asio's types, so it must be one for the whole binary).
set(PROBLEMGATE_IO_URING AUTO CACHE STRING "I/O backend: AUTO, ON (io_uring) or OFF (epoll)")
set_property(CACHE PROBLEMGATE_IO_URING PROPERTY STRINGS AUTO ON OFF)

set(PROBLEMGATE_USE_IO_URING OFF)
if(NOT PROBLEMGATE_IO_URING STREQUAL "OFF")
  find_package(PkgConfig)
  if(PkgConfig_FOUND)
    pkg_check_modules(LIBURING IMPORTED_TARGET liburing)
  endif()
  if(NOT LIBURING_FOUND)
    if(PROBLEMGATE_IO_URING STREQUAL "ON")
      message(FATAL_ERROR "PROBLEMGATE_IO_URING=ON needs liburing (Debian: liburing-dev)")
    endif()
    message(STATUS "I/O backend: epoll (liburing not found)")
  elseif(PROBLEMGATE_IO_URING STREQUAL "ON")
    set(PROBLEMGATE_USE_IO_URING ON)
    message(STATUS "I/O backend: io_uring (PROBLEMGATE_IO_URING=ON)")
  else()
    try_run(_pg_uring_run _pg_uring_compile
            SOURCES ${CMAKE_CURRENT_LIST_DIR}/probes/io_uring_probe.cpp
            LINK_LIBRARIES PkgConfig::LIBURING)
    if(_pg_uring_compile AND _pg_uring_run EQUAL 0)
      set(PROBLEMGATE_USE_IO_URING ON)
      message(STATUS "I/O backend: io_uring (the kernel allows it here)")
    else()
      message(STATUS "I/O backend: epoll (this kernel or its seccomp profile refuses io_uring)")
    endif()
  endif()
endif()
