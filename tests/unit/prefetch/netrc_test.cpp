#include "prefetch/netrc.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace gomodproxy::prefetch {
namespace {

TEST(find_netrc_entry, matches_host_and_port_first_then_host_as_go_does) {
  const std::string text =
      "machine proxy.example login gomodproxy password host-token\n"
      "machine proxy.example:8443\n"
      "  login gomodproxy\n"
      "  password port-token\n"
      "machine other.example login x password other\n";
  const struct {
    std::string host, port;
    std::optional<std::string> password;
  } cases[] = {
      {"proxy.example", "8443", "port-token"},  {"proxy.example", "9000", "host-token"},
      {"proxy.example", "", "host-token"},      {"other.example", "443", "other"},
      {"absent.example", "8443", std::nullopt},
  };
  for (const auto& c : cases) {
    auto found = find_netrc_entry(text, c.host, c.port);
    if (!c.password) {
      EXPECT_FALSE(found) << c.host << ":" << c.port;
      continue;
    }
    ASSERT_TRUE(found) << c.host << ":" << c.port;
    EXPECT_EQ(found->password, *c.password) << c.host << ":" << c.port;
    EXPECT_FALSE(found->login.empty());
  }
}

TEST(find_netrc_entry, default_macdef_and_incomplete_entries) {
  const struct {
    std::string text;
    std::optional<netrc_entry> want;
  } cases[] = {
      {"default login d password d\nmachine h login l password p\n", std::nullopt},
      {"machine h login l password p\ndefault login d password d\n", netrc_entry{"l", "p"}},
      {"macdef init\nmachine h login l password macro\n\nmachine h login l password p\n",
       netrc_entry{"l", "p"}},
      {"machine h password p\n", std::nullopt},
      {"machine h login l\n", std::nullopt},
      {"machine h login l password\n", std::nullopt},
      {"machine h\r\nlogin l\r\npassword p\r\n", netrc_entry{"l", "p"}},
      {"", std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(find_netrc_entry(c.text, "h", ""), c.want) << c.text;
  }
}

}  // namespace
}  // namespace gomodproxy::prefetch
