// The environment of every go process the direct fetcher starts, built from nothing: what makes
// go fetch from version control into the fetcher's own caches, what keeps a public module path
// behind the connect guard, and which of the server's variables credentials need.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace gomodproxy::direct {

/// How a module path is fetched. Private and allowed paths may reach internal hosts (no address
/// check, the server's own proxies); public paths go only through the connect guard.
enum class path_access { public_path, internal_path };

struct go_env_inputs {
  std::filesystem::path mod_cache;             ///< GOMODCACHE
  std::filesystem::path gopath;                ///< GOPATH
  std::filesystem::path go_cache;              ///< GOCACHE
  std::vector<std::string> private_patterns;   ///< GOPRIVATE globs (--private)
  std::vector<std::string> allow_patterns;     ///< --direct-allow globs
  std::vector<std::string> no_sumdb_patterns;  ///< --no-sumdb globs
  std::string guard_url;                       ///< the connect guard's "http://127.0.0.1:PORT"
  std::map<std::string, std::string> server_environment;  ///< this process's environment
};

/// Which access `module_path` gets: internal when it matches a private or an allowed glob.
path_access access_for(const go_env_inputs& inputs, const std::string& module_path);

/// "NAME=value" entries, sorted by name, for a go process fetching a path with `access`.
/// Always: GOPROXY=direct, GOTOOLCHAIN=local, GOFLAGS=-modcacherw, GOENV=off, GO111MODULE=on,
/// GOWORK=off, GOSUMDB=off, GOPRIVATE/GONOSUMDB, the three cache paths, GIT_TERMINAL_PROMPT=0,
/// GIT_ASKPASS=/bin/false, GCM_INTERACTIVE=never, LC_ALL=C, and the credential and TLS variables of
/// the server's environment that are set (PATH, HOME, NETRC, XDG_CONFIG_HOME, GIT_CONFIG_GLOBAL,
/// GIT_CONFIG_SYSTEM, GIT_CONFIG_NOSYSTEM, GIT_SSH(_COMMAND), SSH_AUTH_SOCK, SSL_CERT_*,
/// GIT_SSL_CAINFO, TMPDIR).
/// Public paths: every proxy variable, git's http.proxy and remote.origin.proxy (GIT_CONFIG_COUNT=2
/// and its KEY/VALUE pairs) are the guard, NO_PROXY is empty, GIT_ALLOW_PROTOCOL=https and
/// GOVCS=*:git; internal paths: the server's own proxy variables, GOINSECURE and GIT_CONFIG_COUNT
/// with its numbered pairs (when all of them are set).
std::vector<std::string> go_environment(const go_env_inputs& inputs, path_access access);

}  // namespace gomodproxy::direct
