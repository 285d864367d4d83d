#include "bundle/bundle_layout.hpp"

#include <variant>

#include "protocol/escape.hpp"

namespace gomodproxy::bundle {

std::string member_for_key(std::string_view cache_key) {
  if (cache_key.starts_with('/')) cache_key.remove_prefix(1);
  return std::string(cache_key);
}

std::string module_file_key(std::string_view module_path, std::string_view version,
                            std::string_view suffix) {
  return "/" + protocol::escape_case(module_path) + "/@v/" + protocol::escape_case(version) +
         std::string(suffix);
}

std::string list_key(std::string_view module_path) {
  return "/" + protocol::escape_case(module_path) + "/@v/list";
}

outcome_of<protocol::module_request> parse_member_name(std::string_view name) {
  if (name.empty()) {
    return invalid_request("empty name");
  }
  if (name.front() == '/') {
    return invalid_request("absolute path");
  }
  if (name.find_first_of("%\\") != std::string_view::npos) {
    return invalid_request("a name with '%' or '\\' is no GOPROXY path");
  }
  for (std::string_view rest = name; !rest.empty();) {
    const auto slash = rest.find('/');
    const auto element = rest.substr(0, slash);
    if (element.empty() || element == "." || element == "..") {
      return invalid_request(element.empty() ? "empty path element"
                                             : "'" + std::string(element) + "' path element");
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
    if (rest.empty()) {
      return invalid_request("empty path element");
    }
  }
  const std::string key = "/" + std::string(name);
  auto parsed = protocol::parse_module_request(key);
  if (!parsed) return invalid_request(std::move(parsed.error().detail));
  auto& request = *parsed;
  if (request.kind == protocol::endpoint::latest || request.kind == protocol::endpoint::query) {
    return invalid_request(
        "not a file a bundle carries (only list and canonical versions' .info, .mod, .zip)");
  }
  if (request.cache_key != key) {
    return invalid_request("not canonically escaped (expected " +
                           member_for_key(request.cache_key) + ")");
  }
  return std::move(request);
}

}  // namespace gomodproxy::bundle
