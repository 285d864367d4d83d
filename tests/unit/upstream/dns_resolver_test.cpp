// The resolver against an in-process DNS server on 127.0.0.1 (a silent name beside an answered
// one, shared queries, the TTL cache, per-caller deadlines) and the answers it gives without one.
// tests/integration/test_dns.py runs the same cases through the proxy in a network namespace,
// where resolv.conf and /etc/hosts are the test's.
#include "upstream/dns_resolver.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cpp/loopback_dns_server.hpp"

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

using test::loopback_dns_server;
using clock_type = std::chrono::steady_clock;
using lookup = boost::system::result<std::vector<tcp::endpoint>>;

/// A resolver asking only the test's DNS server, and an io_context run by two threads for the
/// lookups, so callers really are concurrent.
class resolver_harness {
 public:
  explicit resolver_harness(const loopback_dns_server& server)
      : resolver_(dns_resolver_options{.cache = {}, .name_servers = server.address()}),
        work_(io_.get_executor()) {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~resolver_harness() {
    work_.reset();
    for (auto& t : threads_) t.join();
  }

  /// Starts a lookup now; the future holds its answer and how long it took.
  std::future<std::pair<lookup, std::chrono::milliseconds>> start(std::string host,
                                                                  std::chrono::milliseconds limit) {
    return net::co_spawn(
        io_,
        [](dns_resolver& resolver, std::string host, std::chrono::milliseconds limit)
            -> net::awaitable<std::pair<lookup, std::chrono::milliseconds>> {
          auto started = clock_type::now();
          auto answer = co_await resolver.resolve(std::move(host), 443, started + limit);
          co_return std::pair{
              std::move(answer),
              std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - started)};
        }(resolver_, std::move(host), limit),
        net::use_future);
  }

  dns_resolver& resolver() { return resolver_; }

 private:
  // Declared first, so it outlives the io_context: a query still in flight for a silent name
  // must not touch the io_context of callers that have left.
  dns_resolver resolver_;
  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

TEST(dns_resolver, a_silent_name_does_not_delay_another) {
  loopback_dns_server server({{"good.test", {"192.0.2.10", 300}}}, {"blackhole.test"});
  resolver_harness harness(server);
  auto silent = harness.start("blackhole.test", 2000ms);
  std::this_thread::sleep_for(100ms);
  auto good = harness.start("good.test", 2000ms).get();
  ASSERT_TRUE(good.first) << good.first.error().message();
  EXPECT_EQ(*good.first, endpoints({"192.0.2.10"}, 443));
  EXPECT_LT(good.second, 500ms);
  auto [answer, took] = silent.get();
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error(), net::error::timed_out);
  EXPECT_GE(took, 1900ms);
  EXPECT_LT(took, 3000ms);
  EXPECT_GE(server.queries("blackhole.test"), 1);
}

TEST(dns_resolver, each_caller_of_a_shared_lookup_keeps_its_own_deadline) {
  loopback_dns_server server({}, {"blackhole.test"});
  resolver_harness harness(server);
  auto patient = harness.start("blackhole.test", 3000ms);
  std::this_thread::sleep_for(50ms);
  auto hasty = harness.start("blackhole.test", 300ms).get();
  ASSERT_FALSE(hasty.first);
  EXPECT_EQ(hasty.first.error(), net::error::timed_out);
  EXPECT_LT(hasty.second, 1000ms);
  EXPECT_EQ(patient.wait_for(0ms), std::future_status::timeout) << "ended with the hasty caller";
  EXPECT_EQ(patient.get().first.error(), net::error::timed_out);
  EXPECT_EQ(server.queries("blackhole.test"), 1) << "the second caller joined the first query";
}

TEST(dns_resolver, concurrent_callers_share_one_query) {
  loopback_dns_server server({{"good.test", {"192.0.2.10", 300}}}, {});
  resolver_harness harness(server);
  std::vector<std::future<std::pair<lookup, std::chrono::milliseconds>>> callers;
  for (int i = 0; i < 20; ++i) callers.push_back(harness.start("good.test", 2000ms));
  for (auto& caller : callers) {
    auto [answer, took] = caller.get();
    ASSERT_TRUE(answer) << answer.error().message();
    EXPECT_EQ(*answer, endpoints({"192.0.2.10"}, 443));
  }
  EXPECT_EQ(server.queries("good.test"), 1);
}

TEST(dns_resolver, answers_are_cached_for_their_ttl) {
  loopback_dns_server server({{"short.test", {"192.0.2.11", 1}}}, {});
  resolver_harness harness(server);
  ASSERT_TRUE(harness.start("short.test", 2000ms).get().first);
  auto again = harness.start("short.test", 2000ms).get();
  ASSERT_TRUE(again.first);
  EXPECT_EQ(*again.first, endpoints({"192.0.2.11"}, 443));
  EXPECT_EQ(server.queries("short.test"), 1) << "asked again within the TTL";
  EXPECT_EQ(harness.resolver().cached_names(), 1u);
  std::this_thread::sleep_for(1100ms);
  ASSERT_TRUE(harness.start("short.test", 2000ms).get().first);
  EXPECT_EQ(server.queries("short.test"), 2) << "not asked again after the TTL";
}

TEST(dns_resolver, unknown_names_are_not_found_at_once) {
  loopback_dns_server server({}, {});
  resolver_harness harness(server);
  auto [answer, took] = harness.start("missing.test", 2000ms).get();
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error(), net::error::host_not_found);
  EXPECT_LT(took, 500ms);
  EXPECT_EQ(harness.resolver().cached_names(), 0u);
}

TEST(dns_resolver, a_bad_name_server_list_is_a_start_up_error) {
  EXPECT_THROW(dns_resolver(dns_resolver_options{.cache = {}, .name_servers = "not an address"}),
               std::runtime_error);
}

}  // namespace
}  // namespace gomodproxy::upstream
