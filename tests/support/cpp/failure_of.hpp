// An outcome_of<void> as a value GoogleTest compares and prints, so one EXPECT_EQ asserts both the
// code a caller decides on and the detail a person reads.
#pragma once

#include <boost/system/error_code.hpp>
#include <optional>
#include <string>
#include <utility>

#include "common/failure.hpp"

namespace gomodproxy::test {

using code_and_detail = std::pair<boost::system::error_code, std::string>;

/// nullopt for a success, else the failure's code and detail.
inline std::optional<code_and_detail> failure_of(const outcome_of<void>& outcome) {
  if (outcome) return std::nullopt;
  return code_and_detail{outcome.error().code, outcome.error().detail};
}

/// What failure_of returns for a failure of `code` with `detail`.
inline std::optional<code_and_detail> failed_with(boost::system::error_code code,
                                                  std::string detail) {
  return code_and_detail{code, std::move(detail)};
}

}  // namespace gomodproxy::test
