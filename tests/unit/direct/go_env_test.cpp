// The go processes' environment: built from nothing, the guard for public paths, the server's
// proxies and GOINSECURE for private and allowed ones, credentials' variables passed through.
#include "direct/go_env.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

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

TEST(GoEnv, FixedSettingsAndCaches) {
  for (auto access : {path_access::public_path, path_access::internal_path}) {
    auto env = go_environment(inputs(), access);
    EXPECT_EQ(value_of(env, "GOPROXY"), "direct");
    EXPECT_EQ(value_of(env, "GOTOOLCHAIN"), "local");
    EXPECT_EQ(value_of(env, "GOFLAGS"), "-modcacherw");
    EXPECT_EQ(value_of(env, "GOENV"), "off");
    EXPECT_EQ(value_of(env, "GO111MODULE"), "on");
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
                                             "GIT_CONFIG_GLOBAL",
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
      "LC_ALL"};
  EXPECT_EQ(names(env), expected);
}

}  // namespace
}  // namespace gomodproxy::direct
