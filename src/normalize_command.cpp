#include "normalize_command.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdint>
#include <iostream>
#include <iterator>

#include "problemgate/config/load.hpp"
#include "problemgate/problem/normalize.hpp"
#include "normalize_report.hpp"
#include "problemgate/routing/route_table.hpp"

namespace problemgate::cli {

CLI::App* add_normalize_command(CLI::App& app, NormalizeArgs& args) {
  auto* cmd = app.add_subcommand(
      "normalize",
      "Rewrite an upstream error body from stdin into the canonical problem (same code as the proxy)");
  cmd->add_option("--status", args.status, "Upstream HTTP status (400-599)")
      ->check(CLI::Range(100, 599));
  cmd->add_option("--content-type", args.content_type, "Upstream Content-Type");
  cmd->add_option("--content-encoding", args.content_encoding,
                  "Upstream Content-Encoding (gzip, deflate)");
  cmd->add_option("--path", args.path, "Request path (the problem's instance)");
  cmd->add_option("--config", args.config_file, "Config file for problem options and route rules");
  cmd->add_option("--route", args.route,
                  "Route whose dialect and rules apply (default: matched by --path)");
  cmd->add_option("--request-id", args.request_id, "Request id to write into the body");
  cmd->add_flag(
      "--jsonl", args.jsonl,
      "Read one JSON object a line {status, content_type, body, path, request_id, headers} and write "
      "one body a line (content_type null or absent: no Content-Type; headers: an object of the "
      "upstream's Retry-After, X-Amzn-ErrorType, Content-Encoding)");
  cmd->add_flag(
      "--report", args.report,
      "With --jsonl: after the bodies, print a migration report (counts per dialect and parent code, "
      "upstream codes nothing mapped, bodies no dialect recognised)");
  cmd->add_flag("--report-only", args.report_only,
                "With --jsonl: print the migration report instead of the bodies");
  return cmd;
}

namespace {

struct Context {
  config::Config cfg;
  std::optional<routing::RouteTable> table;
  const config::Route* pinned = nullptr;
};

const problem::RouteOptions& route_options(const Context& ctx, std::string_view path) {
  static const problem::RouteOptions kDefault{};
  if (ctx.pinned) return ctx.pinned->problem;
  if (ctx.table) {
    if (const auto* r = ctx.table->match("", path)) return r->problem;
  }
  return kDefault;
}

}  // namespace

int run_normalize_command(const NormalizeArgs& args) {
  Context ctx;
  if (!args.config_file.empty()) {
    try {
      ctx.cfg = config::load_config_file(args.config_file);
    } catch (const config::ConfigError& e) {
      for (const auto& p : e.problems()) std::cerr << "error: " << p << "\n";
      return 1;
    }
    ctx.table.emplace(ctx.cfg.routes);
    if (!args.route.empty()) {
      for (const auto& r : ctx.cfg.routes)
        if (r.name == args.route) ctx.pinned = &r;
      if (!ctx.pinned) {
        std::cerr << "error: no route named '" << args.route << "' in " << args.config_file << "\n";
        return 1;
      }
    }
  } else if (!args.route.empty()) {
    std::cerr << "error: --route needs --config\n";
    return 1;
  }
  problem::Normalizer normalizer;

  if ((args.report || args.report_only) && !args.jsonl) {
    std::cerr << "error: --report and --report-only need --jsonl\n";
    return 2;
  }
  if (!args.jsonl) {
    if (args.status < 400 || args.status > 599) {
      std::cerr << "error: --status must be an error status (400-599)\n";
      return 2;
    }
    std::string body((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    problem::Input in;
    in.status = args.status;
    in.content_type = args.content_type;
    in.content_encoding = args.content_encoding;
    in.body = body;
    in.instance = args.path;
    in.request_id = args.request_id;
    auto out = normalizer.normalize(in, ctx.cfg.problem, route_options(ctx, args.path));
    if (!out.rewritten) {
      std::cerr << "not rewritten: the body would pass through untouched (encoding or size)\n";
      return 3;
    }
    std::cout << out.body << "\n";
    return 0;
  }

  const bool print_bodies = !args.report_only;
  const bool reporting = args.report || args.report_only;
  MigrationReport report;
  std::string line;
  std::size_t line_no = 0;
  int failures = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    // Optional members must be strings when present (json::value() throws on a wrong type).
    auto string_or_absent = [&j](const char* name) {
      auto it = j.find(name);
      return it == j.end() || it->is_string();
    };
    // content_type: null (the corpus's way to write it) means the upstream sent no
    // Content-Type field, the same as leaving the member out.
    if (j.is_object()) {
      if (auto it = j.find("content_type"); it != j.end() && it->is_null()) j.erase(it);
    }
    // headers: an object of string values, when present (the upstream fields the normalizer reads).
    auto headers_ok = [&j] {
      auto it = j.find("headers");
      if (it == j.end()) return true;
      if (!it->is_object()) return false;
      for (const auto& v : *it)
        if (!v.is_string()) return false;
      return true;
    };
    if (j.is_discarded() || !j.is_object() || !j.contains("status") ||
        !j["status"].is_number_integer() || j["status"].get<std::int64_t>() < 400 ||
        j["status"].get<std::int64_t>() > 599 || !string_or_absent("body") ||
        !string_or_absent("content_type") || !string_or_absent("path") ||
        !string_or_absent("request_id") || !headers_ok()) {
      std::cerr << "line " << line_no
                << ": expected {\"status\": 400-599, \"body\": \"...\", ...} with string members\n";
      ++failures;
      report.add_bad_line();
      if (print_bodies)
        std::cout << "{\"error\":\"line " << line_no << " is not a valid input object\"}\n";
      continue;
    }
    const int status = j["status"].get<int>();
    const std::string body = j.value("body", "");
    const std::string content_type = j.value("content_type", "");
    const std::string path = j.value("path", "/");
    const std::string request_id = j.value("request_id", args.request_id);
    std::string retry_after, amzn_error_type, content_encoding;
    if (auto it = j.find("headers"); it != j.end()) {
      for (const auto& [name, value] : it->items()) {
        std::string lower = name;
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower == "retry-after")
          retry_after = value.get<std::string>();
        else if (lower == "x-amzn-errortype")
          amzn_error_type = value.get<std::string>();
        else if (lower == "content-encoding")
          content_encoding = value.get<std::string>();
      }
    }
    problem::Input in;
    in.status = status;
    in.content_type = content_type;
    in.content_encoding = content_encoding;
    in.amzn_error_type = amzn_error_type;
    in.retry_after_header = retry_after;
    in.body = body;
    in.instance = path;
    in.request_id = request_id;
    auto out = normalizer.normalize(in, ctx.cfg.problem, route_options(ctx, path));
    if (reporting) report.add(line_no, in, out);
    if (!print_bodies) continue;
    if (out.rewritten)
      std::cout << out.body << "\n";
    else
      std::cout << "{\"error\":\"line " << line_no
                << " would pass through untouched (content encoding)\"}\n";
  }
  if (reporting) report.print(std::cout);
  return failures == 0 ? 0 : 1;
}

}  // namespace problemgate::cli
