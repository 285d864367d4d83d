#include "resolver/latest_from_list.hpp"

#include <algorithm>

#include "protocol/escape.hpp"
#include "protocol/semver.hpp"

namespace gomodproxy::resolver {
namespace {

using protocol::compare_versions;

bool is_incompatible(std::string_view version) { return version.ends_with("+incompatible"); }

bool is_prerelease(std::string_view version) {
  // Canonical versions only reach here: a '-' before any '+' starts the pre-release part.
  const auto plus = version.find('+');
  return version.substr(0, plus).find('-') != std::string_view::npos;
}

bool is_retracted(std::string_view version, const std::vector<retraction>& retracted) {
  return std::any_of(retracted.begin(), retracted.end(), [version](const retraction& r) {
    return compare_versions(r.low, version) <= 0 && compare_versions(version, r.high) <= 0;
  });
}

std::string_view strip_comment(std::string_view line) {
  if (auto at = line.find("//"); at != std::string_view::npos) line = line.substr(0, at);
  return protocol::trim_space(line);
}

// A version token as go.mod spells it, bare or in double quotes; "" when it is not a valid one.
std::string version_token(std::string_view token) {
  token = protocol::trim_space(token);
  if (token.size() >= 2 && token.front() == '"' && token.back() == '"') {
    token = token.substr(1, token.size() - 2);
  }
  if (!protocol::is_valid_semver(token)) return {};
  return std::string(token);
}

// One retraction from the text after `retract` (or a line inside a block).
std::optional<retraction> parse_retraction(std::string_view spec) {
  if (spec.starts_with('[')) {
    if (!spec.ends_with(']')) return std::nullopt;
    spec = spec.substr(1, spec.size() - 2);
    const auto comma = spec.find(',');
    if (comma == std::string_view::npos) return std::nullopt;
    auto low = version_token(spec.substr(0, comma));
    auto high = version_token(spec.substr(comma + 1));
    if (low.empty() || high.empty() || compare_versions(low, high) > 0) return std::nullopt;
    return retraction{std::move(low), std::move(high)};
  }
  auto single = version_token(spec);
  if (single.empty()) return std::nullopt;
  return retraction{single, single};
}

}  // namespace

std::vector<std::string> tagged_versions(std::string_view list_body) {
  std::vector<std::string> versions;
  while (!list_body.empty()) {
    const auto end = list_body.find('\n');
    auto line = protocol::trim_space(list_body.substr(0, end));
    list_body = end == std::string_view::npos ? std::string_view() : list_body.substr(end + 1);
    const auto field = line.substr(0, line.find_first_of(" \t"));
    if (field.empty() || protocol::is_pseudo_version(field) ||
        protocol::canonical_version(field) != field) {
      continue;
    }
    versions.emplace_back(field);
  }
  std::sort(versions.begin(), versions.end(),
            [](const std::string& a, const std::string& b) { return compare_versions(a, b) < 0; });
  versions.erase(std::unique(versions.begin(), versions.end()), versions.end());
  return versions;
}

std::vector<retraction> parse_retractions(std::string_view go_mod) {
  std::vector<retraction> out;
  bool in_block = false;
  while (!go_mod.empty()) {
    const auto end = go_mod.find('\n');
    auto line = strip_comment(go_mod.substr(0, end));
    go_mod = end == std::string_view::npos ? std::string_view() : go_mod.substr(end + 1);
    if (in_block) {
      if (line == ")") {
        in_block = false;
      } else if (auto r = parse_retraction(line)) {
        out.push_back(std::move(*r));
      }
      continue;
    }
    if (!line.starts_with("retract")) continue;
    auto rest = line.substr(7);
    if (!rest.empty() && rest.front() != ' ' && rest.front() != '\t' && rest.front() != '(') {
      continue;  // another word that starts with "retract"
    }
    rest = protocol::trim_space(rest);
    if (rest == "(") {
      in_block = true;
    } else if (auto r = parse_retraction(rest)) {
      out.push_back(std::move(*r));
    }
  }
  return out;
}

bool is_synthesised_go_mod(std::string_view go_mod, std::string_view module_path) {
  return go_mod.size() == module_path.size() + 8 && go_mod.starts_with("module ") &&
         go_mod.substr(7, module_path.size()) == module_path && go_mod.back() == '\n';
}

std::optional<std::string> compatible_version_to_check(const std::vector<std::string>& ascending,
                                                       const std::vector<retraction>& retracted) {
  if (std::none_of(ascending.begin(), ascending.end(),
                   [](const std::string& v) { return is_incompatible(v); })) {
    return std::nullopt;
  }
  const auto newest = std::find_if(ascending.rbegin(), ascending.rend(), [&](const std::string& v) {
    return !is_incompatible(v) && !is_retracted(v, retracted);
  });
  if (newest != ascending.rend()) return *newest;
  return std::nullopt;
}

std::optional<std::string> latest_version(const std::vector<std::string>& ascending,
                                          const std::vector<retraction>& retracted,
                                          bool drop_incompatible) {
  std::optional<std::string> release;
  std::optional<std::string> prerelease;
  for (const auto& version : ascending) {
    if (is_retracted(version, retracted)) continue;
    if (drop_incompatible && is_incompatible(version)) continue;
    (is_prerelease(version) ? prerelease : release) = version;
  }
  return release ? release : prerelease;
}

}  // namespace gomodproxy::resolver
