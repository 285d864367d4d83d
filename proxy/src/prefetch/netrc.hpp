// The credentials a .netrc holds for the proxy, read as the go command reads them, so that the
// token `config/bootstrap.sh --token` wrote serves `gomodproxy prefetch` too.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gomodproxy::prefetch {

struct netrc_entry {
  std::string login;
  std::string password;
  bool operator==(const netrc_entry&) const = default;
};

/// The entry of .netrc `text` for a proxy at `host` (and `port`, empty when the URL names none):
/// a `machine HOST:PORT` entry first (go 1.23 matches the URL's host with its port), then
/// `machine HOST` (go 1.19 matches the host name alone). As in cmd/go's netrc parser, `default`
/// ends the file, a `macdef` skips to the next blank line, and an entry without a login or
/// password counts as none. nullopt when no entry matches.
std::optional<netrc_entry> find_netrc_entry(std::string_view text, std::string_view host,
                                            std::string_view port);

/// The .netrc the go command reads: $NETRC when set, else $HOME/.netrc.
std::string netrc_path();

}  // namespace gomodproxy::prefetch
