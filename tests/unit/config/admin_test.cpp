// The admin surface's keys: admin.listen (controls + probes), admin.probes_listen (probes only),
// admin.token_file, the --admin / --probes overrides, and the rule that keeps the controls off
// the network unless a token guards them.
#include "problemgate/config/dump.hpp"
#include "problemgate/config/load.hpp"

#include <doctest/doctest.h>

#include "config_test_support.hpp"
#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace problemgate::config;
using namespace problemgate::config::test;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

/// A file in a fresh temporary directory, removed with the object.
class TempFile {
 public:
  explicit TempFile(std::string_view content) {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() / ("pg-admin-test-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(counter.fetch_add(1)));
    fs::create_directories(dir_);
    path_ = (dir_ / "token").string();
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }
  std::string dir() const { return dir_.string(); }

 private:
  fs::path dir_;
  std::string path_;
};

constexpr std::string_view kToken = "0123456789abcdef0123456789abcdef";

}  // namespace

TEST_SUITE("config.admin") {
  TEST_CASE("defaults: controls on loopback 9901, no probes listener, no token") {
    const Config c = load_config_text(kMinimal, "t");
    REQUIRE(c.admin.listen);
    CHECK(c.admin.listen->to_string() == "127.0.0.1:9901");
    CHECK_FALSE(c.admin.probes_listen);
    CHECK(c.admin.token_file.empty());
    CHECK(c.admin.token.empty());
  }

  TEST_CASE("probes_listen: HOST:PORT on any address, or off") {
    Config c = load_config_text(with("admin: { probes_listen: 0.0.0.0:9902 }\n"), "t");
    REQUIRE(c.admin.probes_listen);
    CHECK(c.admin.probes_listen->to_string() == "0.0.0.0:9902");
    c = load_config_text(with("admin: { probes_listen: off }\n"), "t");
    CHECK_FALSE(c.admin.probes_listen);
    CHECK(contains(error_of(with("admin: { probes_listen: 9902 }\n")),
                   "/admin/probes_listen: expected off or HOST:PORT"));
    CHECK(contains(error_of(with("admin: { probes_listen: nowhere }\n")),
                   "/admin/probes_listen: \"nowhere\": missing port"));
    CHECK(contains(error_of(with("admin: { probes: 1.2.3.4:5 }\n")),
                   "/admin/probes: unknown key \"probes\""));
  }

  TEST_CASE("probes_listen may not share an address with listen or admin.listen") {
    CHECK(contains(error_of(with("listen: 0.0.0.0:9902\nadmin: { probes_listen: 0.0.0.0:9902 }\n")),
                   "/admin/probes_listen: 0.0.0.0:9902 is also in listen"));
    CHECK(contains(
        error_of(with("admin: { listen: 127.0.0.1:9901, probes_listen: 127.0.0.1:9901 }\n")),
        "/admin/probes_listen: 127.0.0.1:9901 is also admin.listen"));
    // Port 0 is "any free port": never a clash.
    CHECK(errors_of(with("admin: { listen: 127.0.0.1:0, probes_listen: 127.0.0.1:0 }\n")).empty());
  }

  TEST_CASE("controls on a non-loopback address need a token") {
    for (const char* host : {"0.0.0.0:9901", "\"[::]:9901\"", "10.1.2.3:9901", "localhost:9901",
                             "\"[::ffff:10.0.0.1]:1\""}) {
      CAPTURE(host);
      const std::string e = error_of(with(std::string("admin: { listen: ") + host + " }\n"));
      CHECK(contains(e, "/admin/listen: "));
      CHECK(contains(e, "is not a loopback address"));
      CHECK(contains(e, "admin.token_file"));
      CHECK(contains(e, "admin.probes_listen"));
    }
    for (const char* host :
         {"127.0.0.1:9901", "127.1.2.3:0", "\"[::1]:9901\"", "\"[::ffff:127.0.0.1]:9901\""}) {
      CAPTURE(host);
      CHECK(errors_of(with(std::string("admin: { listen: ") + host + " }\n")).empty());
    }
    // The probes listener never needs one.
    CHECK(errors_of(with("admin: { probes_listen: \"[::]:9902\" }\n")).empty());
    // check-config says it too (same loader), so a bad file never reaches a bind.
  }

  TEST_CASE(
      "token_file: the trimmed content is the token; non-loopback controls are then allowed") {
    TempFile f(std::string("  ") + std::string(kToken) + "\r\n\n");
    const Config c = load_config_text(
        with("admin: { listen: 0.0.0.0:9901, token_file: \"" + f.path() + "\" }\n"), "t");
    CHECK(c.admin.token == kToken);
    CHECK(c.admin.token_file == f.path());
    // A token on loopback is fine too: the controls then require it there as well.
    CHECK(
        load_config_text(with("admin: { token_file: \"" + f.path() + "\" }\n"), "t").admin.token ==
        kToken);
  }

  TEST_CASE("token_file problems are config errors naming the key") {
    SUBCASE("missing") {
      const std::string e = error_of(with("admin: { token_file: /nonexistent/pg-token }\n"));
      CHECK(contains(e, "/admin/token_file: \"/nonexistent/pg-token\": cannot open: "));
    }
    SUBCASE("a directory") {
      TempFile f(kToken);
      CHECK(contains(error_of(with("admin: { token_file: \"" + f.dir() + "\" }\n")),
                     "not a regular file"));
    }
    SUBCASE("empty, or only whitespace") {
      TempFile f(" \n\t\n");
      CHECK(contains(error_of(with("admin: { token_file: \"" + f.path() + "\" }\n")), "is empty"));
    }
    SUBCASE("too short") {
      TempFile f("short\n");
      CHECK(contains(error_of(with("admin: { token_file: \"" + f.path() + "\" }\n")),
                     "the token has 5 characters; use at least 16"));
    }
    SUBCASE("two words") {
      TempFile f("0123456789abcdef 0123456789abcdef\n");
      CHECK(contains(error_of(with("admin: { token_file: \"" + f.path() + "\" }\n")),
                     "one word of visible ASCII"));
    }
    SUBCASE("too large") {
      TempFile f(std::string(5000, 'a'));
      CHECK(contains(error_of(with("admin: { token_file: \"" + f.path() + "\" }\n")),
                     "larger than 4096 bytes"));
    }
    SUBCASE("not a string") {
      CHECK(contains(error_of(with("admin: { token_file: 42 }\n")),
                     "/admin/token_file: expected a non-empty string"));
    }
    SUBCASE("a broken token_file leaves non-loopback controls refused as well") {
      const auto errors =
          errors_of(with("admin: { listen: 0.0.0.0:9901, token_file: /nonexistent/pg-token }\n"));
      REQUIRE(errors.size() == 2);
    }
  }

  TEST_CASE("--admin and --probes override the file; off disables") {
    Overrides o;
    o.admin = "off";
    o.probes = "127.0.0.1:0";
    Config c = load_config_text(with("admin: { listen: 127.0.0.1:9999 }\n"), "t", o);
    CHECK_FALSE(c.admin.listen);
    REQUIRE(c.admin.probes_listen);
    CHECK(c.admin.probes_listen->to_string() == "127.0.0.1:0");

    o = {};
    o.upstream = "http://127.0.0.1:9000";
    o.admin = "127.0.0.1:0";
    c = load_config_flags(o);
    REQUIRE(c.admin.listen);
    CHECK(c.admin.listen->port == 0);
    CHECK_FALSE(c.admin.probes_listen);

    o.probes = "off";
    o.admin = "[::1]:9911";
    c = load_config_text(with("admin: { probes_listen: 0.0.0.0:9902 }\n"), "t", o);
    CHECK(c.admin.listen->to_string() == "[::1]:9911");
    CHECK_FALSE(c.admin.probes_listen);
  }

  TEST_CASE("--admin on a non-loopback address without a token is refused; bad values are named") {
    Overrides o;
    o.upstream = "http://127.0.0.1:9000";
    o.admin = "0.0.0.0:0";
    std::vector<std::string> errors;
    try {
      load_config_flags(o);
    } catch (const ConfigError& e) {
      errors = e.problems();
    }
    REQUIRE(errors.size() == 1);
    CHECK(contains(errors[0], "<flags>: /admin/listen: 0.0.0.0:0 is not a loopback address"));

    o.admin = "nowhere";
    CHECK(contains(error_of(kMinimal, o), "--admin \"nowhere\": missing port"));
    o.admin.reset();
    o.probes = "1.2.3.4";
    CHECK(contains(error_of(kMinimal, o), "--probes \"1.2.3.4\": missing port"));
  }

  TEST_CASE("the dump shows both addresses and the token's file, never the token") {
    TempFile f(kToken);
    const Config c = load_config_text(
        with("admin: { listen: 0.0.0.0:9901, probes_listen: 0.0.0.0:9902, token_file: \"" +
             f.path() + "\" }\n"),
        "t");
    const std::string text = dump_json(c);
    CHECK_FALSE(contains(text, kToken));
    const auto j = nlohmann::json::parse(text);
    CHECK(j["admin"]["listen"] == "0.0.0.0:9901");
    CHECK(j["admin"]["probes_listen"] == "0.0.0.0:9902");
    CHECK(j["admin"]["token_file"] == f.path());
    const auto d = nlohmann::json::parse(dump_json(load_config_text(kMinimal, "t")));
    CHECK(d["admin"]["probes_listen"] == "off");
    CHECK(d["admin"]["token_file"].is_null());
  }
}
