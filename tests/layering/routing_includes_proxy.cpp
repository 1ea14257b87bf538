// Must not compile: routing sits below proxy, so the build gives it no view of proxy's headers
// (tests/layering/CMakeLists.txt expects exactly that error).
#include "problemgate/proxy/server.hpp"

int main() { return 0; }
