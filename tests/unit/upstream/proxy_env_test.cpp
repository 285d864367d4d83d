#include "upstream/proxy_env.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gomodproxy::upstream {
namespace {

TEST(parse_proxy_url, accepts_go_forms) {
  struct row {
    std::string input;
    std::string host;
    std::uint16_t port;
    std::optional<std::string> authorization;
  };
  const std::vector<row> rows = {
      {"http://proxy.corp:3128", "proxy.corp", 3128, std::nullopt},
      {"proxy.corp:3128", "proxy.corp", 3128, std::nullopt},
      {"proxy.corp", "proxy.corp", 80, std::nullopt},
      {"  HTTP://Proxy.Corp:8080/  ", "proxy.corp", 8080, std::nullopt},
      {"http://user:pw@10.0.0.1:3128", "10.0.0.1", 3128, "Basic dXNlcjpwdw=="},
      {"user:pw@10.0.0.1:3128", "10.0.0.1", 3128, "Basic dXNlcjpwdw=="},
      {"http://us%40er:p%3Aw@proxy:1", "proxy", 1, "Basic dXNAZXI6cDp3"},
      {"http://[::1]:3128", "::1", 3128, std::nullopt},
  };
  for (const auto& r : rows) {
    auto parsed = parse_proxy_url(r.input);
    ASSERT_TRUE(parsed) << r.input << ": " << parsed.error().detail;
    const auto& endpoint = *parsed;
    EXPECT_EQ(endpoint.host, r.host) << r.input;
    EXPECT_EQ(endpoint.port, r.port) << r.input;
    EXPECT_EQ(endpoint.authorization, r.authorization) << r.input;
  }
}

TEST(parse_proxy_url, rejects_what_it_cannot_use) {
  for (std::string input : {"", "   ", "https://proxy:443", "socks5://proxy:1080",
                            "http://proxy:99999", "http://proxy:0"}) {
    auto parsed = parse_proxy_url(input);
    ASSERT_FALSE(parsed) << input;
    EXPECT_EQ(parsed.error().code, errc::invalid_request) << input;
    EXPECT_FALSE(parsed.error().detail.empty());
  }
}

TEST(no_proxy_list, matches_like_go) {
  struct row {
    std::string list;
    std::string host;
    std::uint16_t port;
    bool bypass;
  };
  const std::vector<row> rows = {
      {"", "example.com", 443, false},
      {"*", "anything.at.all", 443, true},
      {"example.com", "example.com", 443, true},
      {"example.com", "sub.example.com", 443, true},
      {"example.com", "badexample.com", 443, false},
      {"example.com", "example.com.evil", 443, false},
      {".example.com", "sub.example.com", 443, true},
      {".example.com", "example.com", 443, false},
      {"*.example.com", "a.b.example.com", 443, true},
      {"*.example.com", "example.com", 443, false},
      {"EXAMPLE.com", "Sub.Example.COM", 443, true},
      {"example.com:443", "example.com", 443, true},
      {"example.com:443", "example.com", 8443, false},
      {"foo.org, example.com ,bar.net", "example.com", 443, true},
      {"10.1.2.3", "10.1.2.3", 443, true},
      {"10.1.2.3", "10.1.2.4", 443, false},
      {"10.1.2.3:8080", "10.1.2.3", 8080, true},
      {"10.1.2.3:8080", "10.1.2.3", 443, false},
      {"10.0.0.0/8", "10.200.1.1", 443, true},
      {"10.0.0.0/8", "11.0.0.1", 443, false},
      {"192.168.1.0/23", "192.168.0.255", 443, true},
      {"192.168.1.0/23", "192.168.2.1", 443, false},
      {"::1", "::1", 443, true},
      {"[::1]:443", "::1", 443, true},
      {"2001:db8::/32", "2001:db8::5", 443, true},
      {"2001:db8::/32", "2001:db9::5", 443, false},
      {"127.0.0.1", "localhost", 443, false},
      {"localhost", "localhost", 80, true},
      {"bad/cidr, example.com", "example.com", 443, true},
      {":80", "example.com", 80, false},
  };
  for (const auto& r : rows) {
    no_proxy_list list(r.list);
    EXPECT_EQ(list.bypass(r.host, r.port), r.bypass)
        << "NO_PROXY=\"" << r.list << "\" host " << r.host << ":" << r.port;
  }
}

TEST(basic_credentials, encodes_user_and_password) {
  EXPECT_EQ(basic_credentials("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  EXPECT_EQ(basic_credentials("", ""), "Basic Og==");
}

}  // namespace
}  // namespace gomodproxy::upstream
