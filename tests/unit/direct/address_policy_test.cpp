// The SSRF policy of `direct`: every refused range (and its IPv4-mapped and other IPv6 forms), the
// server's own addresses, public addresses allowed; check_host on IP literals in the spellings
// URL parsers and the C library accept, on names under .localhost, and on names an in-process DNS
// server answers with private, public or no addresses.
#include "direct/address_policy.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/errc.hpp"
#include "tests/support/cpp/failure_of.hpp"
#include "tests/support/cpp/loopback_dns_server.hpp"

namespace gomodproxy::direct {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

using test::failed_with;
using verdict = std::optional<test::code_and_detail>;

verdict refused(const char* address, const std::vector<net::ip::address>& own = {}) {
  return test::failure_of(check_address(net::ip::make_address(address), own));
}

TEST(address_policy, refuses_every_internal_range_with_its_name) {
  struct row {
    const char* address;
    const char* why;
  };
  for (const auto& [address, why] : std::vector<row>{
           {"0.0.0.0", "unspecified"},
           {"0.1.2.3", "unspecified"},
           {"::", "unspecified"},
           {"127.0.0.1", "loopback"},
           {"127.255.255.254", "loopback"},
           {"::1", "loopback"},
           {"10.0.0.1", "private"},
           {"10.255.255.255", "private"},
           {"172.16.0.1", "private"},
           {"172.31.255.255", "private"},
           {"192.168.1.1", "private"},
           {"100.64.0.1", "shared address space (CGNAT)"},
           {"100.127.255.255", "shared address space (CGNAT)"},
           {"169.254.169.254", "link-local"},
           {"fe80::1", "link-local"},
           {"febf::1", "link-local"},
           {"fec0::1", "site-local"},
           {"fc00::1", "unique-local"},
           {"fd12:3456::1", "unique-local"},
           {"224.0.0.1", "multicast"},
           {"239.255.255.250", "multicast"},
           {"ff02::1", "multicast"},
           {"255.255.255.255", "broadcast"},
           {"240.0.0.1", "reserved"},
           // IPv6 forms that a dual-stack socket, an old stack or a NAT64 gateway delivers to the
           // IPv4 address inside them.
           {"::ffff:127.0.0.1", "loopback, IPv4-mapped"},
           {"::ffff:7f00:1", "loopback, IPv4-mapped"},
           {"::FFFF:10.1.2.3", "private, IPv4-mapped"},
           {"::ffff:169.254.169.254", "link-local, IPv4-mapped"},
           {"::ffff:0.0.0.0", "unspecified, IPv4-mapped"},
           {"::ffff:0:192.168.0.1", "private, IPv4-translated"},
           {"::127.0.0.1", "loopback, IPv4-compatible"},
           {"::10.0.0.1", "private, IPv4-compatible"},
           {"64:ff9b::10.0.0.1", "private, NAT64"},
           {"64:ff9b::7f00:1", "loopback, NAT64"},
           {"2002:7f00:1::", "loopback, 6to4"},
           {"2002:a00:1:1234::1", "private, 6to4"},
           {"2002:a9fe:a9fe::", "link-local, 6to4"},
       }) {
    EXPECT_EQ(refused(address), failed_with(errc::refused, why)) << address;
  }
}

TEST(address_policy, allows_public_addresses_next_to_the_ranges) {
  for (const char* address : {"8.8.8.8",
                              "1.1.1.1",
                              "9.255.255.255",
                              "11.0.0.0",
                              "172.15.255.255",
                              "172.32.0.0",
                              "192.167.255.255",
                              "192.169.0.0",
                              "100.63.255.255",
                              "100.128.0.0",
                              "169.253.255.255",
                              "169.255.0.0",
                              "126.255.255.255",
                              "128.0.0.0",
                              "223.255.255.255",
                              "140.82.121.4",
                              "2001:4860:4860::8888",
                              "2606:4700:4700::1111",
                              "fbff::1",
                              "fe7f::1",
                              "::ffff:8.8.8.8",
                              "64:ff9b::8.8.8.8",
                              "2002:808:808::1",
                              "2a00:1450:4001:82b::200e"}) {
    EXPECT_EQ(refused(address), std::nullopt) << address;
  }
}

TEST(address_policy, refuses_the_servers_own_addresses_in_any_form) {
  const std::vector<net::ip::address> own{net::ip::make_address("203.0.113.7"),
                                          net::ip::make_address("2001:db8::7"),
                                          net::ip::make_address("fe80::1234%1")};
  for (const char* address : {"203.0.113.7", "::ffff:203.0.113.7", "64:ff9b::203.0.113.7",
                              "2002:cb00:7107::1", "2001:db8::7", "2001:DB8:0:0:0:0:0:7"}) {
    EXPECT_EQ(refused(address, own), failed_with(errc::refused, "this server's own address"))
        << address;
  }
  // A scope id names an interface, not a host: fe80::1234 on any interface is still refused (as
  // link-local, before the own-address rule is reached).
  EXPECT_EQ(refused("fe80::1234", own), failed_with(errc::refused, "link-local"));
  for (const char* address : {"203.0.113.8", "2001:db8::8", "::ffff:203.0.113.8"}) {
    EXPECT_EQ(refused(address, own), std::nullopt) << address;
  }
}

TEST(address_policy, local_addresses_include_loopback) {
  const auto addresses = local_addresses();
  EXPECT_NE(std::find(addresses.begin(), addresses.end(), net::ip::make_address("127.0.0.1")),
            addresses.end());
}

verdict refused_now(upstream::dns_resolver& dns, std::string host,
                    std::vector<net::ip::address> own = {}, std::chrono::milliseconds budget = 5s) {
  net::io_context io;
  auto future = net::co_spawn(
      io,
      check_host(dns, std::move(host), std::move(own), std::chrono::steady_clock::now() + budget),
      net::use_future);
  io.run();
  return test::failure_of(future.get());
}

TEST(address_policy, ip_literal_hosts_are_refused_in_every_spelling) {
  // A name server nobody answers: a literal must be refused without asking it.
  test::loopback_dns_server dns_server({}, {});
  upstream::dns_resolver dns({.cache = {}, .name_servers = dns_server.address()});
  for (const char* host :
       {"127.0.0.1", "8.8.8.8", "127.1", "0x7f.0.0.1", "0x7f000001", "2130706433", "0177.0.0.1",
        "127.0.0.1.", "::1", "[::1]", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1", "2001:4860:4860::8888",
        "[fe80::1%25eth0]", "example.123"}) {
    EXPECT_EQ(refused_now(dns, host),
              failed_with(errc::refused, std::string(host) + " is an IP literal"))
        << host;
  }
  EXPECT_EQ(dns_server.queries("127.1"), 0);
}

TEST(address_policy, localhost_names_resolve_to_loopback_and_are_refused) {
  upstream::dns_resolver dns;
  EXPECT_EQ(refused_now(dns, "evil.localhost"),
            failed_with(errc::refused, "evil.localhost resolves to 127.0.0.1 (loopback)"));
  EXPECT_EQ(refused_now(dns, "localhost"),
            failed_with(errc::refused, "localhost resolves to 127.0.0.1 (loopback)"));
}

TEST(address_policy, names_are_judged_by_every_address_they_resolve_to) {
  test::loopback_dns_server dns_server({{"internal.example.test", {"10.20.30.40", 60}},
                                        {"metadata.example.test", {"169.254.169.254", 60}},
                                        {"myself.example.test", {"198.51.100.9", 60}},
                                        {"public.example.test", {"93.184.216.34", 60}}},
                                       {"silent.example.test"});
  upstream::dns_resolver dns({.cache = {}, .name_servers = dns_server.address()});
  const std::vector<net::ip::address> own{net::ip::make_address("198.51.100.9")};

  EXPECT_EQ(refused_now(dns, "internal.example.test", own),
            failed_with(errc::refused, "internal.example.test resolves to 10.20.30.40 (private)"));
  EXPECT_EQ(
      refused_now(dns, "metadata.example.test", own),
      failed_with(errc::refused, "metadata.example.test resolves to 169.254.169.254 (link-local)"));
  EXPECT_EQ(
      refused_now(dns, "myself.example.test", own),
      failed_with(errc::refused,
                  "myself.example.test resolves to 198.51.100.9 (this server's own address)"));
  EXPECT_EQ(refused_now(dns, "public.example.test", own), std::nullopt);
  // A failed lookup keeps the resolver's code: the direct tier tells "no such host" (not found)
  // from "could not ask" (a timeout, an error) by it.
  EXPECT_EQ(refused_now(dns, "missing.example.test", own),
            failed_with(net::error::host_not_found, "missing.example.test: dns: host not found"));
  EXPECT_EQ(refused_now(dns, "silent.example.test", own, 300ms),
            failed_with(net::error::timed_out, "silent.example.test: dns: timed out"));
}

TEST(address_policy, a_name_server_that_is_not_there_is_a_refusal) {
  // Nothing listens on the discard port of loopback: the lookup fails or times out, and either
  // way no process may start.
  upstream::dns_resolver dns({.cache = {}, .name_servers = "127.0.0.1:9"});
  auto why = refused_now(dns, "nowhere.example.test", {}, 500ms);
  ASSERT_TRUE(why.has_value());
  EXPECT_TRUE(why->second.starts_with("nowhere.example.test: dns: ")) << why->second;
  EXPECT_NE(why->first.category(), gomodproxy_category()) << why->first.message();
}

TEST(address_policy, hosts_that_are_not_names_are_refused) {
  upstream::dns_resolver dns;
  EXPECT_EQ(refused_now(dns, ""), failed_with(errc::invalid_request, "empty host"));
  EXPECT_EQ(refused_now(dns, "user@host.example"),
            failed_with(errc::invalid_request, "user@host.example is not a host name"));
  EXPECT_EQ(refused_now(dns, "host.example/x"),
            failed_with(errc::invalid_request, "host.example/x is not a host name"));
}

}  // namespace
}  // namespace gomodproxy::direct
