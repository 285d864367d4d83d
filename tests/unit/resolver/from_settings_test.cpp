#include "resolver/from_settings.hpp"

#include <gtest/gtest.h>

#include <string>

#include "common/errc.hpp"
#include "common/failure.hpp"
#include "config/settings.hpp"

namespace gomodproxy::resolver {
namespace {

TEST(options_from_settings, the_defaults_give_the_default_checksum_database) {
  config::settings settings;
  settings.sumdbs.push_back({"sum.golang.org", {}, settings.sumdb_key_text});
  const auto options = options_from_settings(settings);
  ASSERT_TRUE(options) << options.error().detail;
  ASSERT_EQ(options->sumdbs.size(), 1u);
  EXPECT_EQ(options->sumdbs.front().name, "sum.golang.org");
}

TEST(options_from_settings, a_key_that_does_not_parse_is_an_invalid_request_naming_it) {
  config::settings settings;
  settings.sumdbs.push_back({"sum.example.com", {}, "sum.example.com+1234+not-base64"});
  const auto options = options_from_settings(settings);
  ASSERT_FALSE(options);
  EXPECT_EQ(options.error().code, errc::invalid_request);
  const std::string& detail = options.error().detail;
  EXPECT_TRUE(detail.starts_with("sumdb_key: sum.example.com+1234+not-base64: ")) << detail;
  EXPECT_NE(detail.find("; expected a verifier key like " + settings.sumdb_key_text),
            std::string::npos)
      << detail;
  EXPECT_EQ(detail.find('\n'), std::string::npos) << detail;
}

}  // namespace
}  // namespace gomodproxy::resolver
