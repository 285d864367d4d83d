// Who may ask what: client tokens from --auth-file, the --admin-token, and the class of each
// path (open, admin, client). Tokens are kept and compared only as SHA-256 digests, in constant
// time; no token, and no line of the files that hold them, ever leaves this component in a
// message.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/failure.hpp"

namespace gomodproxy::server {

/// What a path needs. Open paths are answered without a token: /healthz and /readyz (load
/// balancers and orchestrators probe them without credentials) and /bootstrap.sh (the script a
/// machine fetches before it has a .netrc; it carries no secret). Admin paths (/metrics,
/// /status, /status.json, everything under /admin/) need the admin token when one is set, else
/// a client token. Every other path is a client path.
enum class path_class : std::uint8_t { open, admin, client };

/// Class of `path` (the request target without its query).
path_class classify(std::string_view path);

/// Why a request was refused; label values of gomodproxy_unauthorized_total{reason}.
enum class refusal : std::uint8_t {
  missing,  ///< no Authorization header, or one of a scheme other than Basic and Bearer
  invalid,  ///< a credential that matches no token (or a client token on an admin path)
};

struct access_decision {
  bool allowed = false;
  /// The name of the token presented, for the access log: the auth file's name for it,
  /// "admin" for the admin token, "-" when none was presented or it matched nothing.
  std::string name = "-";
  refusal reason = refusal::missing;  ///< meaningful when !allowed
};

/// A token as the file named it; the token itself is kept only as its digest.
struct named_token {
  std::string name;
  std::array<unsigned char, 32> digest{};
};

/// Shortest and longest token accepted. A short token is guessable over the network; a long
/// one is refused so that a pasted certificate or key is not taken for a token.
inline constexpr std::size_t min_token_length = 16;
inline constexpr std::size_t max_token_length = 1024;

/// Parses an auth file's content: one token per line, `TOKEN` or `NAME:TOKEN`; blank lines and
/// lines starting with `#` are skipped; spaces and tabs around a line are ignored. Unnamed
/// tokens are named `token-<line number>`. Names are [A-Za-z0-9._-]{1,64}, tokens printable
/// ASCII without spaces (what a .netrc can carry), min_token_length..max_token_length bytes;
/// names and tokens are unique. Returns the tokens, or errc::invalid_request with the problem as
/// the detail, "line N: <what is wrong>", naming the line but never quoting it.
[[nodiscard]] outcome_of<std::vector<named_token>> parse_auth_file(std::string_view content);

/// Checks one token's shape (as for the auth file): success when it is acceptable, else
/// errc::invalid_request with what is wrong as the detail, without quoting it.
[[nodiscard]] outcome_of<void> check_token_shape(std::string_view token);

/// SHA-256 of `token`.
std::array<unsigned char, 32> token_digest(std::string_view token);

/// The token presented in an Authorization header value: the password of `Basic
/// base64(user:password)` (the user name is ignored, as the go command sends whatever login the
/// .netrc names) or the credential of `Bearer token`; schemes are case-insensitive. nullopt
/// when the header is empty, of another scheme, or malformed.
std::optional<std::string> presented_token(std::string_view authorization);

/// The access rules in force. Thread-safe: check() may run on every I/O thread while reload()
/// swaps the token list in.
class access_control final {
 public:
  /// `auth_file`: path of the client token file, empty for none (client paths open).
  /// `admin_token`: the admin token, `@FILE` to read it from FILE's first line, or empty for
  /// none. Returns the rules, or the failure with a one-line detail naming the setting and the
  /// file (never a token): "auth_file: \"/etc/x\" line 3: ...". The code: the errno of a file
  /// that cannot be read (read_setting_file's code), errc::invalid_request for one that does not
  /// parse or holds no token, or an admin token of the wrong shape.
  [[nodiscard]] static outcome_of<std::unique_ptr<access_control>> load(std::string auth_file,
                                                                        std::string admin_token);

  /// True when anything is protected at all.
  bool enabled() const;

  /// Decides a request for `path` with the Authorization header value `authorization` (empty
  /// when absent).
  access_decision check(std::string_view path, std::string_view authorization) const;

  /// Reads the auth file (and an @FILE admin token) again. On success the new tokens apply to
  /// requests from now on and the count of client tokens is returned; on any problem the old
  /// tokens stay and the failure is returned (as load() words and codes it).
  [[nodiscard]] outcome_of<std::size_t> reload();

  /// The auth file's path (empty when there is none).
  const std::string& auth_file() const { return auth_file_; }

 private:
  // Only load() makes one, so no instance exists without its tokens read.
  access_control(std::string auth_file, std::string admin_token_setting);

  struct rules {
    std::vector<named_token> clients;
    std::optional<std::array<unsigned char, 32>> admin;
  };
  [[nodiscard]] outcome_of<std::shared_ptr<const rules>> read() const;
  std::shared_ptr<const rules> current() const;

  std::string auth_file_;
  std::string admin_token_setting_;
  mutable std::mutex mutex_;
  std::shared_ptr<const rules> rules_;
};

}  // namespace gomodproxy::server
