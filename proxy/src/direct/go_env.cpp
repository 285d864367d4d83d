#include "direct/go_env.hpp"

#include <algorithm>
#include <array>
#include <string_view>

#include "protocol/path_glob.hpp"

namespace gomodproxy::direct {
namespace {

// What git, ssh and the go command read to find credentials, configuration and CA certificates
// on the server; nothing else of the server's environment reaches them.
constexpr std::array<std::string_view, 14> passed_through = {"PATH",
                                                             "HOME",
                                                             "NETRC",
                                                             "XDG_CONFIG_HOME",
                                                             "GIT_CONFIG_GLOBAL",
                                                             "GIT_CONFIG_SYSTEM",
                                                             "GIT_CONFIG_NOSYSTEM",
                                                             "GIT_SSH_COMMAND",
                                                             "GIT_SSH",
                                                             "SSH_AUTH_SOCK",
                                                             "SSL_CERT_FILE",
                                                             "SSL_CERT_DIR",
                                                             "GIT_SSL_CAINFO",
                                                             "TMPDIR"};

constexpr std::array<std::string_view, 6> proxy_variables = {
    "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"};

// git's configuration given in the environment (GIT_CONFIG_COUNT and its numbered KEY/VALUE
// pairs), copied only when it is whole: git refuses to run when a pair is missing.
void copy_git_config_entries(const std::map<std::string, std::string>& from,
                             std::map<std::string, std::string>& to) {
  auto count = from.find("GIT_CONFIG_COUNT");
  if (count == from.end()) return;
  const std::string& text = count->second;
  if (text.empty() || text.size() > 3 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return;
  }
  const auto entries = static_cast<std::size_t>(std::stoul(text));
  std::map<std::string, std::string> copied{{"GIT_CONFIG_COUNT", count->second}};
  for (std::size_t i = 0; i < entries; ++i) {
    for (const auto* prefix : {"GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"}) {
      auto entry = from.find(prefix + std::to_string(i));
      if (entry == from.end()) return;
      copied.insert(*entry);
    }
  }
  to.merge(copied);
}

std::string join(const std::vector<std::string>& patterns) {
  std::string out;
  for (const auto& pattern : patterns) {
    if (!out.empty()) out += ',';
    out += pattern;
  }
  return out;
}

}  // namespace

path_access access_for(const go_env_inputs& inputs, const std::string& module_path) {
  if (protocol::match_prefix_patterns(inputs.private_patterns, module_path) ||
      protocol::match_prefix_patterns(inputs.allow_patterns, module_path)) {
    return path_access::internal_path;
  }
  return path_access::public_path;
}

std::vector<std::string> go_environment(const go_env_inputs& inputs, path_access access) {
  std::map<std::string, std::string> env;
  env["GOPROXY"] = "direct";
  env["GOTOOLCHAIN"] = "local";
  env["GOFLAGS"] = "-modcacherw";
  env["GOENV"] = "off";
  env["GO111MODULE"] = "on";
  // No go.work above the working directory may pull the fetch into a workspace.
  env["GOWORK"] = "off";
  // The proxy itself checks every public .mod and .zip against its checksum database before
  // caching it (verify before cache), through its own configured mirrors.
  env["GOSUMDB"] = "off";
  auto internal = inputs.private_patterns;
  internal.insert(internal.end(), inputs.allow_patterns.begin(), inputs.allow_patterns.end());
  auto no_sumdb = internal;
  no_sumdb.insert(no_sumdb.end(), inputs.no_sumdb_patterns.begin(), inputs.no_sumdb_patterns.end());
  if (!internal.empty()) env["GOPRIVATE"] = join(internal);
  if (!no_sumdb.empty()) env["GONOSUMDB"] = join(no_sumdb);
  env["GOMODCACHE"] = inputs.mod_cache.string();
  env["GOPATH"] = inputs.gopath.string();
  env["GOCACHE"] = inputs.go_cache.string();
  // Nothing may wait for a password on a terminal the server does not have.
  env["GIT_TERMINAL_PROMPT"] = "0";
  env["GIT_ASKPASS"] = "/bin/false";
  env["GCM_INTERACTIVE"] = "never";
  // Messages in English whatever the server's locale: they are classified and shown to clients.
  env["LC_ALL"] = "C";
  for (auto name : passed_through) {
    if (auto it = inputs.server_environment.find(std::string(name));
        it != inputs.server_environment.end()) {
      env[it->first] = it->second;
    }
  }
  if (access == path_access::public_path) {
    // Every connection of go and git goes through the guard, which checks each address it
    // connects to; plain http and other VCS tools could get around it, so only git over https.
    for (auto name : proxy_variables) env[std::string(name)] = inputs.guard_url;
    env["NO_PROXY"] = "";
    env["no_proxy"] = "";
    env["GIT_ALLOW_PROTOCOL"] = "https";
    env["GOVCS"] = "*:git";
    // git's http.proxy (in the server user's git configuration) wins over HTTPS_PROXY, and
    // remote.origin.proxy (the go command names its remotes origin) over http.proxy; set in the
    // environment they win over every configuration file. Only these entries: numbered entries
    // of the server's would be renumbered or lost if merged, so none reach public paths.
    env["GIT_CONFIG_COUNT"] = "2";
    env["GIT_CONFIG_KEY_0"] = "http.proxy";
    env["GIT_CONFIG_VALUE_0"] = inputs.guard_url;
    env["GIT_CONFIG_KEY_1"] = "remote.origin.proxy";
    env["GIT_CONFIG_VALUE_1"] = inputs.guard_url;
  } else {
    for (auto name : proxy_variables) {
      if (auto it = inputs.server_environment.find(std::string(name));
          it != inputs.server_environment.end()) {
        env[it->first] = it->second;
      }
    }
    copy_git_config_entries(inputs.server_environment, env);
    if (auto it = inputs.server_environment.find("GOINSECURE");
        it != inputs.server_environment.end()) {
      env["GOINSECURE"] = it->second;
    }
  }
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [name, value] : env) out.push_back(name + "=" + value);
  return out;
}

}  // namespace gomodproxy::direct
