#include "common/errc.hpp"

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/failure.hpp"

namespace gomodproxy {
namespace {

struct status_case {
  errc code;
  int status;
};

TEST(errc, each_code_has_its_documented_status_and_a_message_of_its_own) {
  const std::vector<status_case> cases = {
      {errc::invalid_request, 404},      // the go command falls back only on 404 and 410
      {errc::too_large, 500},            // this process cannot store it
      {errc::verification_failed, 502},  // an upstream sent it
      {errc::cache_io, 500},
      {errc::cache_corrupt, 500},
      {errc::not_found, 404},             // the go command falls back on 404 and 410
      {errc::upstream_unavailable, 404},  // so a `,` in GOPROXY does not stop the go command
      {errc::refused, 403},  // the connect guard's answer to an address the policy refuses
  };
  std::set<std::string> messages;
  for (const auto& c : cases) {
    const boost::system::error_code code = c.code;
    SCOPED_TRACE(code.message());
    EXPECT_EQ(to_http_status(code), c.status);
    EXPECT_NE(code.message(), "unknown gomodproxy error");
    messages.insert(code.message());
  }
  EXPECT_EQ(messages.size(), cases.size());
}

TEST(errc, errors_of_other_categories_are_this_processs_failure) {
  EXPECT_EQ(to_http_status(boost::asio::error::connection_refused), 500);
  EXPECT_EQ(to_http_status(make_error_code(boost::system::errc::no_space_on_device)), 500);
  // The same value in another category is not mistaken for one of ours.
  EXPECT_EQ(
      to_http_status({static_cast<int>(errc::invalid_request), boost::system::system_category()}),
      500);
}

TEST(errc, a_value_no_enumerator_has_is_a_500_with_a_message) {
  const boost::system::error_code unknown{99, gomodproxy_category()};
  EXPECT_EQ(to_http_status(unknown), 500);
  EXPECT_EQ(unknown.message(), "unknown gomodproxy error");
}

TEST(errc, a_failure_has_the_status_of_its_code_and_keeps_its_detail_apart) {
  const failure refused{errc::verification_failed, "x.zip: h1 is h1:a, the record says h1:b"};
  EXPECT_EQ(to_http_status(refused), 502);
  EXPECT_EQ(to_http_status(system_failure(ENOSPC, "write failed")), 500);
  EXPECT_EQ(system_failure(ENOSPC, "write failed").code,
            make_error_code(boost::system::errc::no_space_on_device));

  const outcome_of<int> failed = refused;
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, errc::verification_failed);
  EXPECT_EQ(failed.error().detail, refused.detail);
  try {
    (void)failed.value();
    ADD_FAILURE() << "value() of a failure returned";
  } catch (const boost::system::system_error& thrown) {
    EXPECT_EQ(thrown.code(), errc::verification_failed);
    EXPECT_NE(std::string(thrown.what()).find(refused.detail), std::string::npos);
  }
  const outcome_of<int> answered = 7;
  EXPECT_EQ(answered.value(), 7);
}

}  // namespace
}  // namespace gomodproxy
