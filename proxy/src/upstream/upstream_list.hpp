// GOPROXY-syntax upstream lists: "https://a|https://b,direct".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/failure.hpp"

namespace gomodproxy::upstream {

struct tier_spec {
  enum class kind { url, direct, off };
  kind type = kind::url;
  std::string url;   ///< base URL without trailing '/', for kind::url
  std::string name;  ///< display name: host[:port][/path] for URLs, "direct", "off"
  /// True when the separator after this entry was '|': fall through on any failure. False for
  /// ',' (fall through only on 404/410) and for the last entry.
  bool fall_through_on_error = false;
};

/// Parses like the go command: entries split on ',' and '|', whitespace-trimmed, empty entries
/// skipped, parsing stops after "direct" or "off"; a scheme-less entry with '.', ':' or '/' gets
/// "https://". Fails with errc::invalid_request and one line as the detail for an empty result, a
/// missing or unsupported scheme (http and https only; file:// is not supported by this server),
/// or userinfo in an http:// URL.
[[nodiscard]] outcome_of<std::vector<tier_spec>> parse_upstream_list(std::string_view list);

}  // namespace gomodproxy::upstream
