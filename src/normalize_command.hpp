#pragma once
#include <CLI/CLI.hpp>

#include <string>

namespace problemgate::cli {

/// `problemgate normalize`: the proxy's normalizer on bodies from stdin, for dry runs.
struct NormalizeArgs {
  int status = 0;
  std::string content_type;
  std::string content_encoding;
  std::string path = "/";
  std::string config_file;
  std::string route;
  std::string request_id = "req_dry_run";
  bool jsonl = false;
  bool report = false;       ///< --report: a migration summary after the bodies
  bool report_only = false;  ///< --report-only: the summary instead of the bodies
};

CLI::App* add_normalize_command(CLI::App& app, NormalizeArgs& args);
int run_normalize_command(const NormalizeArgs& args);

}  // namespace problemgate::cli
