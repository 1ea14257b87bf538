// Configure-time probe (cmake/io_uring.cmake): exits 0 when this machine's kernel lets a
// process set up an io_uring, as problemgate's workers will.
#include <liburing.h>

int main() {
  io_uring ring;
  if (io_uring_queue_init(8, &ring, 0) < 0) return 1;
  io_uring_queue_exit(&ring);
  return 0;
}
