#include "probe_report/version_list.hpp"

#include <algorithm>

#include "protocol/semver.hpp"

namespace gomodproxy::probe_report {

std::vector<std::string> parse_version_list(std::string_view body) {
  constexpr std::string_view space = " \t\v\f\r";
  std::vector<std::string> versions;
  while (!body.empty()) {
    const auto newline = body.find('\n');
    auto line = body.substr(0, newline);
    body = newline == std::string_view::npos ? std::string_view{} : body.substr(newline + 1);
    const auto start = line.find_first_not_of(space);
    if (start == std::string_view::npos) continue;
    line = line.substr(start);
    const auto field = line.substr(0, line.find_first_of(space));
    if (protocol::canonical_version(field) != field || protocol::is_pseudo_version(field)) continue;
    versions.emplace_back(field);
  }
  // compare_versions ignores build metadata, so "+incompatible" twins would compare equal;
  // ordering by text second keeps the order total and strict.
  auto before = [](const std::string& a, const std::string& b) {
    const int c = protocol::compare_versions(a, b);
    return c != 0 ? c < 0 : a < b;
  };
  std::sort(versions.begin(), versions.end(), before);
  versions.erase(std::unique(versions.begin(), versions.end()), versions.end());
  return versions;
}

std::optional<std::string> newest_version(const std::vector<std::string>& versions) {
  if (versions.empty()) return std::nullopt;
  return *std::max_element(versions.begin(), versions.end(), [](const auto& a, const auto& b) {
    return protocol::compare_versions(a, b) < 0;
  });
}

}  // namespace gomodproxy::probe_report
