// The process_* metrics every Prometheus client library exports, read from /proc on each
// scrape (nothing is kept between scrapes).
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "problemgate/obs/metrics.hpp"

namespace problemgate::obs {

namespace {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            double value, const char* format) {
  append_metric_header(out, name, type, help);
  out += name;
  out += ' ';
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  out += buf;
  out += '\n';
}

std::string read_file(const char* path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

void render_process_metrics(std::string& out) {
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  // /proc/self/stat: fields after the parenthesised command name (which may hold spaces).
  const std::string stat = read_file("/proc/self/stat");
  const auto paren = stat.rfind(')');
  if (paren != std::string::npos && ticks > 0 && page > 0) {
    std::istringstream fields(stat.substr(paren + 2));
    std::string f;
    // Field 3 (state) is the first here; utime is 14, stime 15, starttime 22, vsize 23, rss 24.
    double utime = 0, stime = 0, starttime = 0, vsize = 0, rss = 0;
    for (int i = 3; i <= 24 && (fields >> f); ++i) {
      if (i == 14)
        utime = std::strtod(f.c_str(), nullptr);
      else if (i == 15)
        stime = std::strtod(f.c_str(), nullptr);
      else if (i == 22)
        starttime = std::strtod(f.c_str(), nullptr);
      else if (i == 23)
        vsize = std::strtod(f.c_str(), nullptr);
      else if (i == 24)
        rss = std::strtod(f.c_str(), nullptr);
    }
    const double t = static_cast<double>(ticks);
    family(out, "process_cpu_seconds_total", "counter",
           "Total user and system CPU time spent in seconds.", (utime + stime) / t, "%.2f");
    family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
           rss * static_cast<double>(page), "%.0f");
    family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", vsize,
           "%.0f");
    // Boot time (btime in /proc/stat) plus the start offset in clock ticks.
    const std::string proc_stat = read_file("/proc/stat");
    const auto b = proc_stat.find("\nbtime ");
    if (b != std::string::npos) {
      const double btime = std::strtod(proc_stat.c_str() + b + 7, nullptr);
      family(out, "process_start_time_seconds", "gauge",
             "Start time of the process since unix epoch in seconds.", btime + starttime / t,
             "%.2f");
    }
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    double n = 0;
    while (const dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    family(out, "process_open_fds", "gauge", "Number of open file descriptors.", n - 1,
           "%.0f");  // minus this DIR's own
  }
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
           static_cast<double>(lim.rlim_cur), "%.0f");
}

}  // namespace problemgate::obs
