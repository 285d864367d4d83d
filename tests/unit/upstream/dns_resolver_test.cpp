// Lookups answered without a name server. Lookups that do reach one (a silent name beside an
// answered one, the TTL cache, /etc/hosts) are tested against a real DNS server in a network
// namespace: tests/integration/test_dns.py.
#include "upstream/dns_resolver.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <string>
#include <vector>

namespace gomodproxy::upstream {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

boost::system::result<std::vector<tcp::endpoint>> resolve_now(dns_resolver& resolver,
                                                              std::string host,
                                                              std::uint16_t port) {
  net::io_context io;
  // A deadline already past: whatever is answered came without waiting for anyone.
  auto future = net::co_spawn(
      io, resolver.resolve(std::move(host), port, std::chrono::steady_clock::now() - 1s),
      net::use_future);
  io.run();
  return future.get();
}

std::vector<tcp::endpoint> endpoints(std::initializer_list<const char*> addresses,
                                     std::uint16_t port) {
  std::vector<tcp::endpoint> out;
  for (const char* a : addresses) out.emplace_back(net::ip::make_address(a), port);
  return out;
}

TEST(dns_resolver, ip_literals_are_their_own_answer) {
  dns_resolver resolver;
  struct row {
    const char* host;
    std::vector<tcp::endpoint> expected;
  };
  for (const auto& [host, expected] : std::vector<row>{
           {"127.0.0.1", endpoints({"127.0.0.1"}, 8080)},
           {"192.0.2.7", endpoints({"192.0.2.7"}, 8080)},
           {"::1", endpoints({"::1"}, 8080)},
           {"2001:db8::5", endpoints({"2001:db8::5"}, 8080)},
       }) {
    auto answer = resolve_now(resolver, host, 8080);
    ASSERT_TRUE(answer) << host << ": " << answer.error().message();
    EXPECT_EQ(*answer, expected) << host;
  }
  EXPECT_EQ(resolver.cached_names(), 0u);
}

TEST(dns_resolver, localhost_names_are_loopback_without_a_lookup) {
  dns_resolver resolver;
  for (const char* host : {"localhost", "localhost.", "proxy.localhost"}) {
    auto answer = resolve_now(resolver, host, 443);
    ASSERT_TRUE(answer) << host << ": " << answer.error().message();
    EXPECT_EQ(*answer, endpoints({"127.0.0.1", "::1"}, 443)) << host;
  }
}

TEST(dns_resolver, many_resolvers_start_and_stop_cleanly) {
  // Each owns a c-ares channel and its lookup thread; both must go with it.
  for (int i = 0; i < 50; ++i) {
    dns_resolver resolver;
    ASSERT_TRUE(resolve_now(resolver, "127.0.0.1", 80));
  }
}

}  // namespace
}  // namespace gomodproxy::upstream
