// The client side of the cache admin verbs: one blocking request to a running proxy's
// /admin/cache/ endpoint with the admin token as a Bearer credential, over http or https.
// Beast and OpenSSL stay in the .cpp.
#pragma once

#include <optional>
#include <string>

#include "common/failure.hpp"

namespace gomodproxy::cache_admin {

struct admin_reply {
  int status = 0;    ///< HTTP status; 0 when no answer came
  std::string body;  ///< the answer's body, or why no answer came
};

/// `method` is GET or POST; `path_and_query` is appended to `proxy_url` (http:// or https://,
/// no path or a base path). `ca_file` (may be empty) is trusted besides the system store. The
/// token is sent, never returned or printed. Bounded: 10 s to connect, 5 min in all.
admin_reply admin_request(const std::string& proxy_url, const std::string& method,
                          const std::string& path_and_query, const std::string& token,
                          const std::string& ca_file);

/// A POST to `path_and_query` whose body is the file at `body_file`, sent as it is read (never
/// held whole), as application/x-tar. Otherwise as admin_request, but bounded by 30 min in all:
/// the proxy answers once it has checked the whole body.
admin_reply admin_upload(const std::string& proxy_url, const std::string& path_and_query,
                         const std::string& token, const std::string& ca_file,
                         const std::string& body_file);

/// The token an admin verb sends for the `admin_token` setting: the setting itself, or the first
/// line of the file named after a leading '@'. When that file cannot be read, the code
/// read_setting_file gives (the errno, or too_large) with the detail "cannot read FILE: reason".
[[nodiscard]] outcome_of<std::string> admin_token_from_setting(const std::string& setting);

}  // namespace gomodproxy::cache_admin
