#pragma once
#include "problemgate/http1/deadline_socket.hpp"

namespace problemgate::proxy {

/// The client's socket with a per-phase deadline: the slowloris defence needs an absolute head
/// deadline that leaves the socket open for a 408 (see http1::DeadlineSocket).
using ClientStream = http1::DeadlineSocket;

}  // namespace problemgate::proxy
