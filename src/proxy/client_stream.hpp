#pragma once
#include "problemgate/upstream/deadline_socket.hpp"

namespace problemgate::proxy {

/// The client's socket with a per-phase deadline: the slowloris defence needs an absolute head
/// deadline that leaves the socket open for a 408 (see upstream::DeadlineSocket).
using ClientStream = upstream::DeadlineSocket;

}  // namespace problemgate::proxy
