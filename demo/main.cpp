// problemgate-demo-api [--listen HOST:PORT] [--threads N]
// The demo legacy API: prints "listening on HOST:PORT" (the actual port) once it accepts
// connections, then serves until SIGINT/SIGTERM and exits 0.
#include "server.hpp"

#include <charconv>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view kUsage =
    "usage: problemgate-demo-api [--listen HOST:PORT] [--threads N]\n"
    "  --listen HOST:PORT  address to bind (default 127.0.0.1:9000; port 0 picks one;\n"
    "                      IPv6 as [::1]:9000)\n"
    "  --threads N         worker threads, 1..256 (default 1)\n";

template <typename T>
bool parse_number(std::string_view s, T& out, T min, T max) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v < min || v > max) return false;
  out = v;
  return true;
}

bool parse_listen(std::string_view s, problemgate::demo::ServerOptions& o) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = s.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    host = host.substr(1, host.size() - 2);
  }
  std::uint16_t port = 0;
  if (!parse_number<std::uint16_t>(s.substr(colon + 1), port, 0, 65535)) return false;
  o.host = std::string(host);
  o.port = port;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  problemgate::demo::ServerOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool has_value = false;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (arg != "--listen" && arg != "--threads") {
      std::cerr << "problemgate-demo-api: unknown argument '" << arg << "'\n" << kUsage;
      return 2;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        std::cerr << "problemgate-demo-api: " << arg << " needs a value\n" << kUsage;
        return 2;
      }
      value = argv[++i];
    }
    const bool ok = arg == "--listen" ? parse_listen(value, options)
                                      : parse_number<unsigned>(value, options.threads, 1, 256);
    if (!ok) {
      std::cerr << "problemgate-demo-api: bad value for " << arg << ": '" << value << "'\n"
                << kUsage;
      return 2;
    }
  }

  try {
    problemgate::demo::Server server(options);
    std::cout << "listening on " << server.local_address() << std::endl;  // flushes
    server.run();
  } catch (const std::exception& e) {
    std::cerr << "problemgate-demo-api: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
