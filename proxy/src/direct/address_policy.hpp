// Which hosts and addresses the `direct` fetcher may reach for a public module path: the SSRF
// policy. A LAN proxy fetches whatever module path a client names, so without it any client could
// make the server connect to its own loopback services or to the internal network behind it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/failure.hpp"
#include "upstream/dns_resolver.hpp"

namespace gomodproxy::direct {

/// Whether a connection to `address` may be made when fetching a public module path: refused
/// (errc::refused) for loopback, unspecified, link-local 169.254/16 and fe80::/10, private 10/8
/// 172.16/12 192.168/16, CGNAT 100.64/10, unique-local fc00::/7, multicast, broadcast,
/// IPv4-mapped/compatible forms of those, one of `own` (the server's own addresses).
/// The detail is a short phrase such as "loopback" or "private, IPv4-mapped", meant to follow the
/// address in parentheses. Also refused: the rest of 0.0.0.0/8, reserved 240.0.0.0/4, the
/// deprecated site-local fec0::/10, and NAT64 (64:ff9b::/96) and 6to4 (2002::/16) forms of
/// refused IPv4 addresses.
/// Pure; thread-safe.
[[nodiscard]] outcome_of<void> check_address(const boost::asio::ip::address& address,
                                             std::span<const boost::asio::ip::address> own);

/// Whether `host` is spelled as a DNS name (or dotted IPv4) may be: 1 to 253 of letters, digits,
/// '.', '-', '_'. Never true for anything carrying userinfo, a port, a path or brackets.
bool is_host_name(std::string_view host);

/// A failed lookup of dns_resolver::resolve() in a few words: "host not found", "no address",
/// "lookup failed (server failure)", "timed out", else the error's message.
std::string dns_failure_reason(const boost::system::error_code& ec);

/// This machine's interface addresses (getifaddrs), IPv4 and IPv6, without scope ids. Empty when
/// getifaddrs fails.
std::vector<boost::asio::ip::address> local_addresses();

/// Before any process starts for a public module path: success when `host` (the module path's
/// first element) may be fetched; else a one-line detail: "<host> is an IP literal", "<host>
/// resolves to 127.0.0.1 (loopback)", "<host>: dns: host not found" ...
/// The code: errc::refused for an IP literal or a refused address, errc::invalid_request for an
/// empty host or one that is not a host name, the lookup's own error (Asio's netdb or misc
/// category, error::no_data when it answered no address) when the name could not be resolved.
/// IP literals are refused whatever they point at (every spelling the C library or a URL parser
/// would take as an address: dotted, shortened "127.1", hex, octal, IPv6 with or without
/// brackets). A name is looked up with `dns` on port 443 until `deadline` and refused when any of
/// its addresses is refused by check_address(). `dns` must outlive the coroutine.
[[nodiscard]] boost::asio::awaitable<outcome_of<void>> check_host(
    upstream::dns_resolver& dns, std::string host, std::vector<boost::asio::ip::address> own,
    std::chrono::steady_clock::time_point deadline);

}  // namespace gomodproxy::direct
