// Reading one series back from the Prometheus text that monitor::metrics::serialize() writes.
#pragma once

#include <string>

namespace gomodproxy::test {

// The value of the series written exactly as `series` (name and labels), or -1 if absent.
inline double value_of(const std::string& text, const std::string& series) {
  auto at = ("\n" + text).find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 1));
}

}  // namespace gomodproxy::test
