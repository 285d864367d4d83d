// The request-target parser (the first code a client's bytes reach after the HTTP head) and the
// escaping and validation it is built from. Besides "no crash, no sanitizer report", checks that
// an accepted request satisfies every rule the resolver relies on, that its canonical upstream
// path parses back to the same request, and that !-escaping round-trips.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/escape.hpp"
#include "protocol/module_path.hpp"
#include "protocol/request.hpp"
#include "protocol/semver.hpp"

namespace {

using namespace gomodproxy::protocol;

// libFuzzer reports the abort with the input that caused it.
void require(bool holds) {
  if (!holds) std::abort();
}

bool is_one_printable_line(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  }
  return true;
}

void check_request(const module_request& request) {
  require(request.cache_key.starts_with("/"));
  if (is_sumdb(request.kind)) {
    require(!request.sumdb.empty());
    require(request.cache_key == "/sumdb/" + request.sumdb + request.upstream_path);
  } else {
    require(request.sumdb.empty());
    require(request.cache_key == request.upstream_path);
  }
  const bool has_module = !is_sumdb(request.kind) || request.kind == endpoint::sumdb_lookup;
  if (has_module) require(check_path(request.module_path).has_value());
  switch (request.kind) {
    case endpoint::list:
    case endpoint::latest:
      require(request.version.empty());
      break;
    case endpoint::mod:
    case endpoint::zip:
    case endpoint::info:
    case endpoint::sumdb_lookup:
      // Only canonical versions valid for the path name an immutable file.
      require(canonical_version(request.version) == request.version);
      require(check_path_version(request.module_path, request.version).has_value());
      break;
    case endpoint::query:
      require(!request.version.empty());
      require(is_valid_file_element(request.version));
      break;
    case endpoint::sumdb_supported:
    case endpoint::sumdb_tile:
    case endpoint::sumdb_latest:
      break;
  }

  // The canonical spelling of an accepted request is itself accepted, as the same request: the
  // cache key does not depend on how the client spelled it.
  const std::string canonical_target = is_sumdb(request.kind)
                                           ? "/sumdb/" + request.sumdb + request.upstream_path
                                           : request.upstream_path;
  const auto again = parse_module_request(canonical_target);
  const auto* same = again ? &*again : nullptr;
  require(same != nullptr);
  require(same->kind == request.kind);
  require(same->module_path == request.module_path);
  require(same->version == request.version);
  require(same->upstream_path == request.upstream_path);
  require(same->cache_key == request.cache_key);
}

void check_escaping(std::string_view text) {
  const std::string escaped = escape_case(text);
  for (char c : escaped) require(c < 'A' || c > 'Z');
  const bool ascii_without_bang =
      text.find('!') == std::string_view::npos && std::all_of(text.begin(), text.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x80;
      });
  if (ascii_without_bang) require(unescape_case(escaped) == std::string(text));
  // unescape_case accepts only what escape_case produces.
  if (const auto unescaped = unescape_case(text)) require(escape_case(*unescaped) == text);

  const std::string quoted = quote(text);
  require(is_one_printable_line(quoted));
  require(quoted.size() <= 2 + 4 * 128 + 3);
}

void check_version(std::string_view text) {
  const std::string canonical = canonical_version(text);
  require(is_valid_semver(text) == !canonical.empty());
  if (canonical.empty()) return;
  require(is_valid_semver(canonical));
  require(canonical_version(canonical) == canonical);
  require(compare_versions(text, canonical) == 0);
  require(major_of(text) == major_of(canonical));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view target(reinterpret_cast<const char*>(data), size);

  const auto parsed = parse_module_request(target);
  if (parsed) {
    check_request(*parsed);
  } else {
    const auto& error = parsed.error();
    require(error.code == gomodproxy::errc::invalid_request);
    require(!error.detail.empty());
    // The detail goes into a one-line text/plain body after "not found: ".
    require(is_one_printable_line(error.detail));
  }

  std::string decoded;
  if (percent_decode(target, decoded)) {
    require(decoded.find('\0') == std::string::npos);
    if (target.find('%') == std::string_view::npos) require(decoded == target);
  }

  check_escaping(target);
  check_version(target);
  // A valid module path is ASCII without '!', so its escaped form always unescapes back.
  if (check_path(target)) require(unescape_case(escape_case(target)) == std::string(target));
  (void)check_file_path(target);
  return 0;
}
