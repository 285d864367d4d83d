// Outbound proxy selection for the upstream client: parsing HTTPS_PROXY/HTTP_PROXY values and
// NO_PROXY lists with the rules of Go's golang.org/x/net/http/httpproxy, so a user's environment
// means the same to gomodproxy as to the go command.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/failure.hpp"

namespace gomodproxy::upstream {

/// An HTTP proxy to send requests through (CONNECT for https targets, absolute-form for http).
struct proxy_endpoint {
  std::string host;  ///< without brackets for IPv6
  std::uint16_t port = 80;
  /// Value for Proxy-Authorization ("Basic ...") when the proxy URL carried userinfo.
  std::optional<std::string> authorization;
};

/// Parses a proxy setting such as "http://user:pw@proxy:3128" or "proxy:3128" (a value without a
/// scheme gets "http://", as in Go). Fails with errc::invalid_request and one line as the detail
/// for an empty host, a bad port, or a scheme other than http (https and socks5 proxies are not
/// supported).
[[nodiscard]] outcome_of<proxy_endpoint> parse_proxy_url(std::string_view value);

/// A parsed NO_PROXY list. Entries are comma-separated and case-insensitive: "*" matches every
/// host; an IP address (optionally with ":port") matches that address exactly; a CIDR block
/// matches addresses inside it; a domain name matches itself and its subdomains on a label
/// boundary; a leading "." (or "*.") matches subdomains only; a ":port" suffix restricts the entry
/// to that port. Unparseable entries are ignored, as Go does.
class no_proxy_list final {
 public:
  no_proxy_list() = default;
  explicit no_proxy_list(std::string_view value);

  /// True when requests to `host` (no brackets) on `port` must not use a proxy.
  [[nodiscard]] bool bypass(std::string_view host, std::uint16_t port) const;

 private:
  struct ip_entry {
    std::vector<unsigned char> bytes;  ///< 4 or 16 bytes
    unsigned prefix_bits = 0;          ///< equal to bytes.size() * 8 for an exact address
    std::uint16_t port = 0;            ///< 0: any port
  };
  struct domain_entry {
    std::string suffix;  ///< always starts with '.'
    bool match_self = true;
    std::uint16_t port = 0;
  };
  bool all_ = false;
  std::vector<ip_entry> ips_;
  std::vector<domain_entry> domains_;
};

/// "Basic <base64(user:password)>" for Authorization and Proxy-Authorization headers.
std::string basic_credentials(std::string_view user, std::string_view password);

}  // namespace gomodproxy::upstream
