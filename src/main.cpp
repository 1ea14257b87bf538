// problemgate: argv -> config -> Server -> run threads -> signals.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "problemgate/config/load.hpp"
#include "problemgate/obs/access_log.hpp"
#include "problemgate/proxy/server.hpp"
#include "normalize_command.hpp"

#include "problemgate_build_info.hpp"  // generated: PROBLEMGATE_VERSION, _COMMIT, _BUILD_TYPE

namespace {

using problemgate::config::ConfigError;

void print_errors(const ConfigError& e) {
  for (const auto& p : e.problems()) std::cerr << "error: " << p << "\n";
}

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"problemgate: a reverse proxy that makes every upstream error an RFC 9457 problem"};
  app.set_version_flag("--version", "problemgate " PROBLEMGATE_VERSION
                                    " (commit " PROBLEMGATE_COMMIT ", " PROBLEMGATE_BUILD_TYPE ")");
  std::string config_file;
  std::string listen;
  std::string upstream_url;
  unsigned threads = 0;
  std::string log_level = env("PROBLEMGATE_LOG_LEVEL").value_or("info");
  app.add_option("-c,--config", config_file, "Config file (YAML or JSON)");
  app.add_option("--listen", listen, "HOST:PORT to listen on (env PROBLEMGATE_LISTEN)");
  app.add_option(
      "--upstream", upstream_url,
      "Zero-config sidecar: send every path to this http://host:port (env PROBLEMGATE_UPSTREAM)");
  std::string admin;
  std::string probes;
  app.add_option(
      "--admin", admin,
      "HOST:PORT|off for the admin listener: probes, metrics, GET /config, POST /reload "
      "(default 127.0.0.1:9901; a non-loopback address needs admin.token_file) (env PROBLEMGATE_ADMIN)");
  app.add_option(
      "--probes", probes,
      "HOST:PORT|off for a listener with /healthz, /readyz and /metrics only, safe on the pod IP "
      "(default off) (env PROBLEMGATE_PROBES)");
  app.add_option("--threads", threads,
                 "Worker threads (default: config, else the number of cores)");
  app.add_option("--log-level", log_level,
                 "trace|debug|info|warn|error|critical|off (env PROBLEMGATE_LOG_LEVEL)");

  std::string check_file;
  auto* check =
      app.add_subcommand("check-config", "Validate a config file and exit (non-zero on errors)");
  check->add_option("file", check_file, "Config file")->required();

  problemgate::cli::NormalizeArgs normalize_args;
  auto* normalize = problemgate::cli::add_normalize_command(app, normalize_args);

  CLI11_PARSE(app, argc, argv);
  // A log reader that went away (stdout/stderr a closed pipe) must fail a write, not kill the
  // proxy (nginx ignores SIGPIPE too); sockets already use MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);

  if (!problemgate::obs::init_diagnostics(log_level)) {
    std::cerr << "error: unknown log level '" << log_level << "'\n";
    return 2;
  }

  if (*check) {
    try {
      auto cfg = problemgate::config::load_config_file(check_file);
      std::cout << check_file << ": ok (" << cfg.routes.size() << " routes, "
                << cfg.upstreams.size() << " upstreams)\n";
      return 0;
    } catch (const ConfigError& e) {
      print_errors(e);
      return 1;
    }
  }
  if (*normalize) return problemgate::cli::run_normalize_command(normalize_args);

  problemgate::config::Overrides overrides;
  if (!listen.empty())
    overrides.listen = listen;
  else
    overrides.listen = env("PROBLEMGATE_LISTEN");
  if (!upstream_url.empty())
    overrides.upstream = upstream_url;
  else
    overrides.upstream = env("PROBLEMGATE_UPSTREAM");
  if (!admin.empty())
    overrides.admin = admin;
  else
    overrides.admin = env("PROBLEMGATE_ADMIN");
  if (!probes.empty())
    overrides.probes = probes;
  else
    overrides.probes = env("PROBLEMGATE_PROBES");
  if (threads > 0) overrides.threads = threads;

  auto load = [&]() {
    return config_file.empty() ? problemgate::config::load_config_flags(overrides)
                               : problemgate::config::load_config_file(config_file, overrides);
  };
  problemgate::config::Config cfg;
  try {
    cfg = load();
  } catch (const ConfigError& e) {
    print_errors(e);
    return 1;
  }

  try {
    problemgate::proxy::Server server(std::move(cfg));
    server.set_build_info(PROBLEMGATE_VERSION, PROBLEMGATE_COMMIT);
    // Ready lines go to stderr with the diagnostics: stdout is the access log, JSON lines only.
    server.start(std::cerr);
    if (!config_file.empty()) server.set_config_loader(load);
    return server.run();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
