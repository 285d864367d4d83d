#include "direct/address_policy.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/error.hpp>
#include <cstdint>
#include <utility>

namespace gomodproxy::direct {
namespace {

namespace net = boost::asio;

bool in_v4_range(std::uint32_t address, std::uint32_t network, int prefix_length) {
  const std::uint32_t mask = prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix_length);
  return (address & mask) == network;
}

constexpr std::uint32_t v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return std::uint32_t{a} << 24 | std::uint32_t{b} << 16 | std::uint32_t{c} << 8 | d;
}

std::optional<std::string> refused_v4(const net::ip::address_v4& address) {
  const std::uint32_t a = address.to_uint();
  // connect() to any 0.x.x.x address reaches this host on Linux, like 0.0.0.0 itself.
  if (in_v4_range(a, v4(0, 0, 0, 0), 8)) return "unspecified";
  if (in_v4_range(a, v4(127, 0, 0, 0), 8)) return "loopback";
  if (in_v4_range(a, v4(10, 0, 0, 0), 8) || in_v4_range(a, v4(172, 16, 0, 0), 12) ||
      in_v4_range(a, v4(192, 168, 0, 0), 16)) {
    return "private";
  }
  if (in_v4_range(a, v4(100, 64, 0, 0), 10)) return "shared address space (CGNAT)";
  if (in_v4_range(a, v4(169, 254, 0, 0), 16)) return "link-local";
  if (in_v4_range(a, v4(224, 0, 0, 0), 4)) return "multicast";
  if (a == v4(255, 255, 255, 255)) return "broadcast";
  if (in_v4_range(a, v4(240, 0, 0, 0), 4)) return "reserved";
  return std::nullopt;
}

// The IPv4 address an IPv6 address stands for, when it embeds one in a form some stack or
// gateway on the path would deliver to that IPv4 address, with the name of the form.
std::optional<std::pair<net::ip::address_v4, const char*>> embedded_v4(
    const net::ip::address_v6::bytes_type& b) {
  auto all_zero = [&b](std::size_t from, std::size_t to) {
    return std::all_of(b.begin() + from, b.begin() + to, [](unsigned char c) { return c == 0; });
  };
  const net::ip::address_v4 tail(net::ip::address_v4::bytes_type{b[12], b[13], b[14], b[15]});
  if (all_zero(0, 10) && b[10] == 0xff && b[11] == 0xff) return {{tail, "IPv4-mapped"}};
  if (all_zero(0, 8) && b[8] == 0xff && b[9] == 0xff && all_zero(10, 12)) {
    return {{tail, "IPv4-translated"}};
  }
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && all_zero(4, 12)) {
    return {{tail, "NAT64"}};
  }
  // 6to4 (2002::/16): a 6to4 router on the server's network unwraps these to the IPv4 address
  // in bits 16..47, so 2002:a00:1:: reaches 10.0.0.1 as NAT64 would.
  if (b[0] == 0x20 && b[1] == 0x02) {
    return {{net::ip::address_v4(net::ip::address_v4::bytes_type{b[2], b[3], b[4], b[5]}), "6to4"}};
  }
  // ::/96 minus :: and ::1, which are their own IPv6 addresses.
  if (all_zero(0, 12) && !(all_zero(12, 15) && b[15] <= 1)) return {{tail, "IPv4-compatible"}};
  return std::nullopt;
}

std::optional<std::string> refused_v6(const net::ip::address_v6& address) {
  const auto b = address.to_bytes();
  if (address.is_unspecified()) return "unspecified";
  if (address.is_loopback()) return "loopback";
  if (auto inner = embedded_v4(b)) {
    if (auto why = refused_v4(inner->first)) return *why + ", " + inner->second;
    return std::nullopt;
  }
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "link-local";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return "site-local";
  if ((b[0] & 0xfe) == 0xfc) return "unique-local";
  if (b[0] == 0xff) return "multicast";
  return std::nullopt;
}

// Addresses compared as the host they reach: without an IPv6 scope id, and an IPv4-mapped
// address as its IPv4 address.
net::ip::address normalized(const net::ip::address& address) {
  if (address.is_v4()) return address;
  const auto b = address.to_v6().to_bytes();
  if (auto inner = embedded_v4(b)) return inner->first;
  return net::ip::address_v6(b);
}

bool is_ip_literal(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  boost::system::error_code ec;
  (void)net::ip::make_address_v6(host, ec);
  if (!ec) return true;
  // URL parsers (WHATWG) accept one trailing dot after an IPv4 address.
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  const std::string text(host);
  in_addr parsed{};
  // inet_aton, not inet_pton: it takes what getaddrinfo and curl take, "127.1", "0x7f.1",
  // "2130706433", octal "0177.0.0.1".
  if (::inet_aton(text.c_str(), &parsed) != 0) return true;
  // A name whose last label is a number is an IPv4 address to URL parsers, or invalid.
  const auto dot = host.rfind('.');
  const auto last = dot == std::string_view::npos ? host : host.substr(dot + 1);
  return !last.empty() &&
         std::all_of(last.begin(), last.end(),
                     [](char c) { return (c >= '0' && c <= '9') || c == 'x' || c == 'X'; }) &&
         last.front() >= '0' && last.front() <= '9';
}

}  // namespace

outcome_of<void> check_address(const net::ip::address& address,
                               std::span<const net::ip::address> own) {
  if (auto why = address.is_v4() ? refused_v4(address.to_v4()) : refused_v6(address.to_v6())) {
    return failure{errc::refused, std::move(*why)};
  }
  const auto target = normalized(address);
  for (const auto& mine : own) {
    if (normalized(mine) == target) return failure{errc::refused, "this server's own address"};
  }
  return {};
}

std::string dns_failure_reason(const boost::system::error_code& ec) {
  if (ec == net::error::host_not_found) return "host not found";
  if (ec == net::error::no_data) return "no address";
  if (ec == net::error::host_not_found_try_again) return "lookup failed (server failure)";
  if (ec == net::error::timed_out) return "timed out";
  return ec.message();
}

bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
  });
}

std::vector<net::ip::address> local_addresses() {
  std::vector<net::ip::address> addresses;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return addresses;
  for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    if (entry->ifa_addr->sa_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
      addresses.emplace_back(net::ip::address_v4(ntohl(in->sin_addr.s_addr)));
    } else if (entry->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr);
      net::ip::address_v6::bytes_type bytes;
      std::copy(std::begin(in6->sin6_addr.s6_addr), std::end(in6->sin6_addr.s6_addr),
                bytes.begin());
      addresses.emplace_back(net::ip::address_v6(bytes));
    }
  }
  ::freeifaddrs(list);
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  return addresses;
}

net::awaitable<outcome_of<void>> check_host(upstream::dns_resolver& dns, std::string host,
                                            std::vector<net::ip::address> own,
                                            std::chrono::steady_clock::time_point deadline) {
  if (host.empty()) co_return invalid_request("empty host");
  if (is_ip_literal(host)) co_return failure{errc::refused, host + " is an IP literal"};
  if (!is_host_name(host)) co_return invalid_request(host + " is not a host name");
  auto answer = co_await dns.resolve(host, 443, deadline);
  if (!answer) {
    co_return failure{answer.error(), host + ": dns: " + dns_failure_reason(answer.error())};
  }
  if (answer->empty()) co_return failure{net::error::no_data, host + ": dns: no address"};
  for (const auto& endpoint : *answer) {
    if (auto allowed = check_address(endpoint.address(), own); !allowed) {
      co_return failure{errc::refused, host + " resolves to " + endpoint.address().to_string() +
                                           " (" + allowed.error().detail + ")"};
    }
  }
  co_return outcome_of<void>{};
}

}  // namespace gomodproxy::direct
