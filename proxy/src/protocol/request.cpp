#include "protocol/request.hpp"

#include <optional>
#include <utility>

#include "protocol/escape.hpp"
#include "protocol/module_path.hpp"
#include "protocol/semver.hpp"

namespace gomodproxy::protocol {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct file_suffix {
  std::string_view text;
  endpoint kind;
};

constexpr file_suffix file_suffixes[] = {
    {".info", endpoint::info}, {".mod", endpoint::mod}, {".zip", endpoint::zip}};

std::string_view upstream_suffix(endpoint kind) {
  switch (kind) {
    case endpoint::list:
      return "/@v/list";
    case endpoint::latest:
      return "/@latest";
    case endpoint::info:
    case endpoint::query:
      return ".info";
    case endpoint::mod:
      return ".mod";
    case endpoint::zip:
      return ".zip";
  }
  return {};
}

}  // namespace

std::string_view endpoint_name(endpoint kind) {
  switch (kind) {
    case endpoint::list:
      return "list";
    case endpoint::latest:
      return "latest";
    case endpoint::info:
      return "info";
    case endpoint::query:
      return "query";
    case endpoint::mod:
      return "mod";
    case endpoint::zip:
      return "zip";
  }
  return "unknown";
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (in.size() - i < 3) return false;
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return false;
    out += c;
  }
  return true;
}

std::variant<module_request, parse_error> parse_module_request(std::string_view target) {
  const auto fail = [](std::string reason) { return parse_error{std::move(reason)}; };
  // The go command never sends a query or fragment; accepting one would split the cache key.
  if (target.find_first_of("?#") != std::string_view::npos) {
    return fail("query strings and fragments are not part of the GOPROXY protocol");
  }
  if (target.empty() || target.front() != '/') return fail("request target must start with '/'");
  std::string decoded;
  if (!percent_decode(target, decoded)) return fail("invalid percent-encoding in request path");

  module_request request;
  std::string_view rest = std::string_view(decoded).substr(1);
  std::string_view escaped_path;
  std::string_view escaped_version;
  if (rest.ends_with("/@latest")) {
    request.kind = endpoint::latest;
    escaped_path = rest.substr(0, rest.size() - std::string_view("/@latest").size());
  } else {
    // Module paths cannot contain '@' and versions cannot contain '/', so only the last
    // "/@v/" can be the real separator.
    const auto at = rest.rfind("/@v/");
    if (at == std::string_view::npos) return fail("unknown endpoint");
    escaped_path = rest.substr(0, at);
    const auto file = rest.substr(at + std::string_view("/@v/").size());
    if (file == "list") {
      request.kind = endpoint::list;
    } else {
      const file_suffix* match = nullptr;
      for (const auto& suffix : file_suffixes) {
        if (file.ends_with(suffix.text)) match = &suffix;
      }
      if (match == nullptr) return fail("unknown endpoint");
      request.kind = match->kind;
      escaped_version = file.substr(0, file.size() - match->text.size());
    }
  }

  auto path = unescape_case(escaped_path);
  if (!path) return fail("invalid escaped module path " + quote(escaped_path));
  if (auto reason = check_path(*path)) return fail(std::move(*reason));
  request.module_path = std::move(*path);

  if (request.kind != endpoint::list && request.kind != endpoint::latest) {
    auto version = unescape_case(escaped_version);
    if (!version) return fail("invalid escaped version " + quote(escaped_version));
    if (!is_valid_file_element(*version)) {
      return fail("invalid escaped version " + quote(escaped_version) +
                  ": disallowed version string");
    }
    const bool canonical = canonical_version(*version) == *version;
    const auto mismatch =
        canonical ? check_path_version(request.module_path, *version) : std::nullopt;
    if (request.kind == endpoint::info) {
      // Anything else is a revision query the upstream resolves ("master", "v1.2", "v1.2.3+meta").
      if (!canonical || mismatch) request.kind = endpoint::query;
    } else {
      if (!canonical) return fail("version " + quote(*version) + " is not canonical");
      if (mismatch) return fail(*mismatch);
    }
    request.version = std::move(*version);
  }

  request.upstream_path = "/" + escape_case(request.module_path);
  if (!request.version.empty()) request.upstream_path += "/@v/" + escape_case(request.version);
  request.upstream_path += upstream_suffix(request.kind);
  request.cache_key = request.upstream_path;
  return request;
}

}  // namespace gomodproxy::protocol
