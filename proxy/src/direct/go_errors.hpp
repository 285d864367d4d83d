// What a failed go command says, made fit for a 404 body and a log line: one line, short,
// credentials removed, and classified as a not-found or a transient failure.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "upstream/http_client.hpp"

namespace gomodproxy::direct {

/// Longest reason condense() returns, in bytes.
inline constexpr std::size_t max_reason_bytes = 300;

/// The passwords of a .netrc text (the values after each "password" token; macdef bodies are
/// skipped). Pure.
std::vector<std::string> netrc_passwords(std::string_view netrc_text);

/// The passwords of the .netrc files the go command and git will read with `environment`:
/// $NETRC (the go command's) and $HOME/.netrc (git's, and go's without NETRC); empty when there
/// is none. Reads the files; never logs their content.
std::vector<std::string> known_secrets(const std::map<std::string, std::string>& environment);

/// `text` with credentials replaced by "***": URL userinfo removed (https://user:pass@host ->
/// https://host), Authorization headers, x-access-token:…, oauth2:…@, bearer/basic tokens,
/// GitHub and GitLab token shapes, and every string of `secrets` (4 bytes or longer) as given
/// and percent-encoded. For texts of a few KiB (condense gives it at most 4 KiB): its regular
/// expressions recurse once per byte of a match.
std::string scrub(std::string_view text, const std::vector<std::string>& secrets);

/// `message` (a go command's stderr or JSON Error; only its first 4 KiB, cut back to a blank,
/// are looked at) scrubbed, then as one line of printable
/// bytes of at most max_reason_bytes: "go: " prefixes dropped, line breaks and tabs folded to
/// one space, " in <dir>" naming a directory under `private_dir` (the fetcher's caches)
/// dropped, prefixed with `subcommand` ("go mod download: ...").
std::string condense(std::string_view subcommand, std::string_view message,
                     const std::vector<std::string>& secrets, std::string_view private_dir);

/// How a go command that exited non-zero failed: outcome::error when `message` shows a
/// transient network failure (connection refused or reset, i/o timeout, TLS handshake
/// timeout, name server failure, a 5xx from the server or from the connect guard) or a failure of
/// this machine (a git killed by a signal, a full disk or quota, a read-only file system, too many
/// open files, no memory), else outcome::not_found. Of a message over 64 KiB, only the first and
/// the last 32 KiB are looked at.
upstream::outcome classify_failure(std::string_view message);

}  // namespace gomodproxy::direct
