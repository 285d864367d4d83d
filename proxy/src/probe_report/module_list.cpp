#include "probe_report/module_list.hpp"

#include <map>

#include "protocol/escape.hpp"
#include "protocol/module_path.hpp"
#include "protocol/semver.hpp"

namespace gomodproxy::probe_report {

using protocol::trim_space;

namespace {

std::string shown(std::string_view s) { return protocol::quote(s); }

// The target an entry names, or why it names none.
[[nodiscard]] outcome_of<module_target> parse_entry(std::string_view entry) {
  module_target target;
  const auto at = entry.find('@');
  const auto path = entry.substr(0, at);
  if (auto checked = protocol::check_path(path); !checked) {
    return invalid_request("invalid module path " + shown(path) + ": " + checked.error().detail);
  }
  target.path = std::string(path);
  if (at == std::string_view::npos) return target;
  const auto version = entry.substr(at + 1);
  if (version.empty()) return invalid_request("missing version after '@' in " + shown(entry));
  // .info/.mod/.zip are immutable answers only for canonical versions, which is what a mirror
  // comparison must ask for; a branch or "latest" would compare two different things.
  if (!protocol::is_valid_semver(version) || protocol::canonical_version(version) != version) {
    return invalid_request("version " + shown(version) + " is not canonical semver (like v1.2.3)");
  }
  if (auto checked = protocol::check_path_version(path, version); !checked) {
    return invalid_request("version " + shown(version) + " does not fit " + shown(path) + ": " +
                           checked.error().detail);
  }
  target.version = std::string(version);
  return target;
}

}  // namespace

outcome_of<std::vector<module_target>> parse_module_list(std::string_view text) {
  std::vector<module_target> targets;
  std::map<std::string, std::size_t, std::less<>> first_line_of;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const auto newline = text.find('\n');
    auto line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    line = trim_space(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    const auto where = "line " + std::to_string(line_number) + ": ";
    if (line.find_first_of(" \t") != std::string_view::npos) {
      return invalid_request(where + "expected one module path or path@version, got " +
                             shown(line));
    }
    auto parsed = parse_entry(line);
    if (!parsed) {
      auto problem = parsed.error();
      return failure{problem.code, where + problem.detail};
    }
    auto& target = *parsed;
    // Probing a module twice would weigh it double in every rate and percentile.
    auto [it, inserted] = first_line_of.emplace(target.path, line_number);
    if (!inserted) {
      return invalid_request(where + shown(target.path) + " is already listed on line " +
                             std::to_string(it->second));
    }
    targets.push_back(std::move(target));
  }
  if (targets.empty()) return invalid_request("lists no modules");
  return targets;
}

std::vector<module_target> default_module_targets() {
  return {{"golang.org/x/mod", std::nullopt},
          {"golang.org/x/text", std::nullopt},
          {"github.com/google/uuid", std::nullopt},
          {"gopkg.in/yaml.v3", std::nullopt}};
}

std::string describe(const module_target& target) {
  return target.version ? target.path + "@" + *target.version : target.path;
}

}  // namespace gomodproxy::probe_report
