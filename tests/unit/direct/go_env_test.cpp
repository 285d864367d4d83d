// The go processes' environment: built from nothing, the guard for public paths, the server's
// proxies and GOINSECURE for private and allowed ones, credentials' variables passed through.
#include "direct/go_env.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <fstream>
#include <optional>

#include "direct/go_process.hpp"

namespace gomodproxy::direct {
namespace {

go_env_inputs inputs() {
  go_env_inputs in;
  in.mod_cache = "/srv/cache/direct/mod";
  in.gopath = "/srv/cache/direct/gopath";
  in.go_cache = "/srv/cache/direct/gocache";
  in.private_patterns = {"git.corp.example.test/*"};
  in.allow_patterns = {"gitlab.lan"};
  in.no_sumdb_patterns = {"github.com/public-but-unlisted"};
  in.guard_url = "http://127.0.0.1:40001";
  in.server_environment = {
      {"PATH", "/usr/local/bin:/usr/bin:/bin"},
      {"HOME", "/home/proxy"},
      {"NETRC", "/etc/gomodproxy/netrc"},
      {"GIT_CONFIG_GLOBAL", "/etc/gomodproxy/gitconfig"},
      {"SSH_AUTH_SOCK", "/run/agent.sock"},
      {"GIT_SSH_COMMAND", "ssh -i /etc/gomodproxy/id"},
      {"HTTPS_PROXY", "http://corp-proxy:3128"},
      {"http_proxy", "http://corp-proxy:3128"},
      {"NO_PROXY", ".corp.example.test"},
      {"GOINSECURE", "git.corp.example.test"},
      {"GOPROXY", "https://proxy.golang.org"},
      {"GOFLAGS", "-mod=vendor"},
      {"GONOSUMCHECK", "1"},
      {"AWS_SECRET_ACCESS_KEY", "do-not-leak"},
      {"GOMODPROXY_CACHE_DIR", "/srv/cache"},
      {"LD_PRELOAD", "/tmp/evil.so"},
  };
  return in;
}

std::optional<std::string> value_of(const std::vector<std::string>& env, std::string_view name) {
  for (const auto& entry : env) {
    if (entry.starts_with(std::string(name) + "=")) return entry.substr(name.size() + 1);
  }
  return std::nullopt;
}

std::vector<std::string> names(const std::vector<std::string>& env) {
  std::vector<std::string> out;
  for (const auto& entry : env) out.push_back(entry.substr(0, entry.find('=')));
  return out;
}

TEST(GoEnv, AccessFollowsThePrivateAndAllowGlobs) {
  auto in = inputs();
  EXPECT_EQ(access_for(in, "git.corp.example.test/team/mod"), path_access::internal_path);
  EXPECT_EQ(access_for(in, "gitlab.lan/group/project"), path_access::internal_path);
  EXPECT_EQ(access_for(in, "github.com/google/uuid"), path_access::public_path);
  EXPECT_EQ(access_for(in, "gitlab.lan.evil.example/x"), path_access::public_path);
  EXPECT_EQ(access_for(in, "github.com/public-but-unlisted"), path_access::public_path);
}

TEST(GoEnv, PublicPathsGoThroughTheGuardOnly) {
  auto env = go_environment(inputs(), path_access::public_path);
  for (auto name : {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"}) {
    EXPECT_EQ(value_of(env, name), "http://127.0.0.1:40001") << name;
  }
  EXPECT_EQ(value_of(env, "NO_PROXY"), "");
  EXPECT_EQ(value_of(env, "no_proxy"), "");
  EXPECT_EQ(value_of(env, "GIT_ALLOW_PROTOCOL"), "https");
  EXPECT_EQ(value_of(env, "GOVCS"), "*:git");
  EXPECT_EQ(value_of(env, "GOINSECURE"), std::nullopt);
}

TEST(GoEnv, InternalPathsGetTheServersProxiesAndGoinsecure) {
  auto env = go_environment(inputs(), path_access::internal_path);
  EXPECT_EQ(value_of(env, "HTTPS_PROXY"), "http://corp-proxy:3128");
  EXPECT_EQ(value_of(env, "http_proxy"), "http://corp-proxy:3128");
  EXPECT_EQ(value_of(env, "NO_PROXY"), ".corp.example.test");
  EXPECT_EQ(value_of(env, "HTTP_PROXY"), std::nullopt);
  EXPECT_EQ(value_of(env, "https_proxy"), std::nullopt);
  EXPECT_EQ(value_of(env, "GOINSECURE"), "git.corp.example.test");
  EXPECT_EQ(value_of(env, "GIT_ALLOW_PROTOCOL"), std::nullopt);
  EXPECT_EQ(value_of(env, "GOVCS"), std::nullopt);
}

TEST(GoEnv, PublicPathsSetGitsHttpProxyToTheGuardInsteadOfTheServersGitConfigEntries) {
  auto in = inputs();
  in.server_environment["GIT_CONFIG_COUNT"] = "2";
  in.server_environment["GIT_CONFIG_KEY_0"] = "url.https://mirror.example/.insteadOf";
  in.server_environment["GIT_CONFIG_VALUE_0"] = "https://github.com/";
  in.server_environment["GIT_CONFIG_KEY_1"] = "http.proxy";
  in.server_environment["GIT_CONFIG_VALUE_1"] = "http://corp-proxy:3128";
  auto env = go_environment(in, path_access::public_path);
  EXPECT_EQ(value_of(env, "GIT_CONFIG_COUNT"), "2");
  EXPECT_EQ(value_of(env, "GIT_CONFIG_KEY_0"), "http.proxy");
  EXPECT_EQ(value_of(env, "GIT_CONFIG_VALUE_0"), "http://127.0.0.1:40001");
  EXPECT_EQ(value_of(env, "GIT_CONFIG_KEY_1"), "remote.origin.proxy");
  EXPECT_EQ(value_of(env, "GIT_CONFIG_VALUE_1"), "http://127.0.0.1:40001");
  EXPECT_EQ(value_of(env, "GIT_CONFIG_KEY_2"), std::nullopt);
}

TEST(GoEnv, InternalPathsGetTheServersGitConfigEntriesOnlyWhenComplete) {
  auto in = inputs();
  in.server_environment["GIT_CONFIG_COUNT"] = "2";
  in.server_environment["GIT_CONFIG_KEY_0"] = "url.https://mirror.example/.insteadOf";
  in.server_environment["GIT_CONFIG_VALUE_0"] = "https://github.com/";
  in.server_environment["GIT_CONFIG_KEY_1"] = "http.sslVerify";
  in.server_environment["GIT_CONFIG_VALUE_1"] = "true";
  auto env = go_environment(in, path_access::internal_path);
  EXPECT_EQ(value_of(env, "GIT_CONFIG_COUNT"), "2");
  EXPECT_EQ(value_of(env, "GIT_CONFIG_KEY_0"), "url.https://mirror.example/.insteadOf");
  EXPECT_EQ(value_of(env, "GIT_CONFIG_VALUE_1"), "true");

  // git exits at once on a missing pair; better none of them than a git that never runs.
  in.server_environment.erase("GIT_CONFIG_VALUE_1");
  env = go_environment(in, path_access::internal_path);
  EXPECT_EQ(value_of(env, "GIT_CONFIG_COUNT"), std::nullopt);
  EXPECT_EQ(value_of(env, "GIT_CONFIG_KEY_0"), std::nullopt);
  in.server_environment["GIT_CONFIG_COUNT"] = "two";
  EXPECT_EQ(value_of(go_environment(in, path_access::internal_path), "GIT_CONFIG_COUNT"),
            std::nullopt);
}

// The real git, asked which proxy it would use, with the server user's git configuration
// naming another one: the guard wins over a generic http.proxy, but not over a URL-specific
// http.<url>.proxy (docs/direct.md tells operators not to set one).
TEST(GoEnv, RealGitUsesTheGuardOverTheServerUsersHttpProxy) {
  auto git = find_program("git", "/usr/local/bin:/usr/bin:/bin");
  ASSERT_TRUE(git) << "git is a dependency of the direct tier (scripts/install-deps.sh)";
  const auto home =
      std::filesystem::temp_directory_path() / ("go_env_test_home_" + std::to_string(::getpid()));
  std::filesystem::create_directories(home);
  {
    std::ofstream config(home / ".gitconfig");
    config << "[http]\n\tproxy = http://corp-proxy.example:3128\n"
           << "[http \"https://pinned.example/\"]\n\tproxy = http://pinned-proxy.example:3128\n"
           << "[remote \"origin\"]\n\tproxy = http://remote-proxy.example:3128\n";
  }
  auto in = inputs();
  in.server_environment = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", home.string()}};
  auto ask = [&](std::vector<std::string> arguments) {
    process_spec spec;
    spec.program = git->string();
    spec.arguments = std::move(arguments);
    spec.environment = go_environment(in, path_access::public_path);
    spec.working_directory = home;
    spec.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    boost::asio::io_context io;
    auto answer = boost::asio::co_spawn(io, run_process(io.get_executor(), std::move(spec)),
                                        boost::asio::use_future);
    io.run();
    auto result = answer.get();
    EXPECT_EQ(result.exit_status, 0) << result.err;
    return result.out;
  };
  EXPECT_EQ(ask({"config", "--get-urlmatch", "http.proxy", "https://github.com/google/uuid"}),
            "http://127.0.0.1:40001\n");
  // git uses a remote's own proxy before http.proxy; the go command's remotes are all origin.
  EXPECT_EQ(ask({"config", "--get", "remote.origin.proxy"}), "http://127.0.0.1:40001\n");
  EXPECT_EQ(ask({"config", "--get-urlmatch", "http.proxy", "https://pinned.example/x"}),
            "http://pinned-proxy.example:3128\n");
  std::filesystem::remove_all(home);
}

TEST(GoEnv, FixedSettingsAndCaches) {
  for (auto access : {path_access::public_path, path_access::internal_path}) {
    auto env = go_environment(inputs(), access);
    EXPECT_EQ(value_of(env, "GOPROXY"), "direct");
    EXPECT_EQ(value_of(env, "GOTOOLCHAIN"), "local");
    EXPECT_EQ(value_of(env, "GOFLAGS"), "-modcacherw");
    EXPECT_EQ(value_of(env, "GOENV"), "off");
    EXPECT_EQ(value_of(env, "GO111MODULE"), "on");
    EXPECT_EQ(value_of(env, "GOWORK"), "off");
    EXPECT_EQ(value_of(env, "GOSUMDB"), "off");
    EXPECT_EQ(value_of(env, "GOPRIVATE"), "git.corp.example.test/*,gitlab.lan");
    EXPECT_EQ(value_of(env, "GONOSUMDB"),
              "git.corp.example.test/*,gitlab.lan,github.com/public-but-unlisted");
    EXPECT_EQ(value_of(env, "GOMODCACHE"), "/srv/cache/direct/mod");
    EXPECT_EQ(value_of(env, "GOPATH"), "/srv/cache/direct/gopath");
    EXPECT_EQ(value_of(env, "GOCACHE"), "/srv/cache/direct/gocache");
    EXPECT_EQ(value_of(env, "GIT_TERMINAL_PROMPT"), "0");
    EXPECT_EQ(value_of(env, "GIT_ASKPASS"), "/bin/false");
  }
}

TEST(GoEnv, CredentialVariablesPassThroughAndNothingElseDoes) {
  auto env = go_environment(inputs(), path_access::public_path);
  EXPECT_EQ(value_of(env, "PATH"), "/usr/local/bin:/usr/bin:/bin");
  EXPECT_EQ(value_of(env, "HOME"), "/home/proxy");
  EXPECT_EQ(value_of(env, "NETRC"), "/etc/gomodproxy/netrc");
  EXPECT_EQ(value_of(env, "GIT_CONFIG_GLOBAL"), "/etc/gomodproxy/gitconfig");
  EXPECT_EQ(value_of(env, "SSH_AUTH_SOCK"), "/run/agent.sock");
  EXPECT_EQ(value_of(env, "GIT_SSH_COMMAND"), "ssh -i /etc/gomodproxy/id");
  const std::vector<std::string> expected = {"GCM_INTERACTIVE",
                                             "GIT_ALLOW_PROTOCOL",
                                             "GIT_ASKPASS",
                                             "GIT_CONFIG_COUNT",
                                             "GIT_CONFIG_GLOBAL",
                                             "GIT_CONFIG_KEY_0",
                                             "GIT_CONFIG_KEY_1",
                                             "GIT_CONFIG_VALUE_0",
                                             "GIT_CONFIG_VALUE_1",
                                             "GIT_SSH_COMMAND",
                                             "GIT_TERMINAL_PROMPT",
                                             "GO111MODULE",
                                             "GOCACHE",
                                             "GOENV",
                                             "GOFLAGS",
                                             "GOMODCACHE",
                                             "GONOSUMDB",
                                             "GOPATH",
                                             "GOPRIVATE",
                                             "GOPROXY",
                                             "GOSUMDB",
                                             "GOTOOLCHAIN",
                                             "GOVCS",
                                             "GOWORK",
                                             "HOME",
                                             "HTTPS_PROXY",
                                             "HTTP_PROXY",
                                             "LC_ALL",
                                             "NETRC",
                                             "NO_PROXY",
                                             "PATH",
                                             "SSH_AUTH_SOCK",
                                             "http_proxy",
                                             "https_proxy",
                                             "no_proxy"};
  EXPECT_EQ(names(env), expected);
}

TEST(GoEnv, NothingIsSetFromAnEmptyServerEnvironment) {
  auto in = inputs();
  in.server_environment.clear();
  in.private_patterns.clear();
  in.allow_patterns.clear();
  in.no_sumdb_patterns.clear();
  auto env = go_environment(in, path_access::internal_path);
  const std::vector<std::string> expected = {
      "GCM_INTERACTIVE", "GIT_ASKPASS", "GIT_TERMINAL_PROMPT",
      "GO111MODULE",     "GOCACHE",     "GOENV",
      "GOFLAGS",         "GOMODCACHE",  "GOPATH",
      "GOPROXY",         "GOSUMDB",     "GOTOOLCHAIN",
      "GOWORK",          "LC_ALL"};
  EXPECT_EQ(names(env), expected);
}

}  // namespace
}  // namespace gomodproxy::direct
