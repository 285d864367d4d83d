#include "protocol/request.hpp"

#include <algorithm>
#include <array>
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

constexpr std::array<file_suffix, 3> file_suffixes = {
    {{".info", endpoint::info}, {".mod", endpoint::mod}, {".zip", endpoint::zip}}};

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
    case endpoint::sumdb_supported:
    case endpoint::sumdb_lookup:
    case endpoint::sumdb_tile:
    case endpoint::sumdb_latest:
      break;
  }
  return {};
}

// Percent-encodes what may not stand in a URL path (RFC 3986 pchar and '/'). A revision query
// may hold ' ', '#', '%', '[', ']', '^', '{' and '}' (file-name characters), which raw would end,
// cut short or change the upstream's request target; the go command encodes them too.
constexpr std::array<bool, 256> path_safe_bytes() {
  std::array<bool, 256> table{};
  for (char c = '0'; c <= '9'; ++c) table[static_cast<unsigned char>(c)] = true;
  for (char c = 'a'; c <= 'z'; ++c) table[static_cast<unsigned char>(c)] = true;
  for (char c = 'A'; c <= 'Z'; ++c) table[static_cast<unsigned char>(c)] = true;
  for (char c : std::string_view("-._~!$&'()*+,;=:@/")) table[static_cast<unsigned char>(c)] = true;
  return table;
}

// Appends `text` !-escaped (escape_case) and then percent-encoded, in one pass: '!' and the
// lower-case letters escaping produces need no percent-encoding.
void append_escaped_encoded(std::string& out, std::string_view text) {
  static constexpr std::string_view hex = "0123456789ABCDEF";
  static constexpr auto raw = path_safe_bytes();
  // Lower-case paths and versions, the usual case, need no escape: appended in one copy.
  std::size_t plain = 0;
  while (plain < text.size() && raw[static_cast<unsigned char>(text[plain])] &&
         !(text[plain] >= 'A' && text[plain] <= 'Z')) {
    ++plain;
  }
  out.append(text.substr(0, plain));
  text.remove_prefix(plain);
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (c >= 'A' && c <= 'Z') {
      out += '!';
      out += static_cast<char>(c - 'A' + 'a');
    } else if (raw[b]) {
      out += c;
    } else {
      out += '%';
      out += hex[b >> 4];
      out += hex[b & 0xf];
    }
  }
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// A decimal number without leading zeros, at most `max`.
std::optional<std::int64_t> small_number(std::string_view s, std::int64_t max) {
  if (!all_digits(s) || s.size() > 12 || (s.size() > 1 && s.front() == '0')) return std::nullopt;
  std::int64_t value = 0;
  for (char c : s) value = value * 10 + (c - '0');
  if (value > max) return std::nullopt;
  return value;
}

// "tile/$H/$L/$NNN[.p/$W]" as the checksum database names tiles: H in 1..30, L a level (or
// "data"), NNN the index in 3-digit groups with 'x' before every group but the last, and W a
// partial width in 1..2^H-1.
bool is_tile_path(std::string_view tile) {
  bool more = true;  // another element follows (a trailing '/' makes an empty last one)
  auto next = [&tile, &more]() {
    const auto slash = tile.find('/');
    auto element = tile.substr(0, slash);
    more = slash != std::string_view::npos;
    tile = more ? tile.substr(slash + 1) : std::string_view{};
    return element;
  };
  const auto height = small_number(next(), 30);
  if (!height || *height == 0) return false;
  const auto level = next();
  if (level != "data" && !small_number(level, 63)) return false;
  for (;;) {
    auto group = next();
    if (group.size() == 4 && group.front() == 'x' && all_digits(group.substr(1))) continue;
    if (group.size() == 3 && all_digits(group)) break;
    if (group.size() == 5 && group.substr(3) == ".p" && all_digits(group.substr(0, 3))) {
      const auto width = small_number(next(), (std::int64_t{1} << *height) - 1);
      return width && *width > 0 && !more;
    }
    return false;
  }
  return !more;
}

bool is_sumdb_name(std::string_view name) {
  return !name.empty() && name.size() <= 200 &&
         name.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") ==
             std::string_view::npos &&
         name.front() != '.';
}

outcome_of<module_request> parse_sumdb_request(std::string_view rest) {
  module_request request;
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) return invalid_request("unknown checksum database endpoint");
  const auto name = rest.substr(0, slash);
  if (!is_sumdb_name(name)) return invalid_request("invalid checksum database name " + quote(name));
  request.sumdb = std::string(name);
  const auto endpoint_path = rest.substr(slash);
  if (endpoint_path == "/supported") {
    request.kind = endpoint::sumdb_supported;
  } else if (endpoint_path == "/latest") {
    request.kind = endpoint::sumdb_latest;
  } else if (endpoint_path.starts_with("/tile/")) {
    if (!is_tile_path(endpoint_path.substr(std::string_view("/tile/").size()))) {
      return invalid_request("invalid tile path " + quote(endpoint_path));
    }
    request.kind = endpoint::sumdb_tile;
  } else if (endpoint_path.starts_with("/lookup/")) {
    const auto spec = endpoint_path.substr(std::string_view("/lookup/").size());
    const auto at = spec.rfind('@');
    if (at == std::string_view::npos) return invalid_request("lookup needs module@version");
    if (auto fits = check_file_name_lengths(spec.substr(0, at), spec.substr(at + 1)); !fits) {
      return invalid_request(std::move(fits.error().detail));
    }
    auto path = unescape_case(spec.substr(0, at));
    if (!path) return invalid_request("invalid escaped module path " + quote(spec.substr(0, at)));
    if (auto checked = check_path(*path); !checked)
      return invalid_request(std::move(checked.error().detail));
    auto version = unescape_case(spec.substr(at + 1));
    if (!version || canonical_version(*version) != *version) {
      return invalid_request("version " + quote(spec.substr(at + 1)) + " is not canonical");
    }
    if (auto fits = check_path_version(*path, *version); !fits) {
      return invalid_request(std::move(fits.error().detail));
    }
    request.kind = endpoint::sumdb_lookup;
    request.module_path = std::move(*path);
    request.version = std::move(*version);
  } else {
    return invalid_request("unknown checksum database endpoint");
  }
  request.upstream_path = request.kind == endpoint::sumdb_lookup
                              ? sumdb_lookup_path(request.module_path, request.version)
                              : std::string(endpoint_path);
  request.cache_key = "/sumdb/" + request.sumdb + request.upstream_path;
  return request;
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
    case endpoint::sumdb_supported:
      return "sumdb_supported";
    case endpoint::sumdb_lookup:
      return "sumdb_lookup";
    case endpoint::sumdb_tile:
      return "sumdb_tile";
    case endpoint::sumdb_latest:
      return "sumdb_latest";
  }
  return "unknown";
}

std::string sumdb_lookup_path(std::string_view module_path, std::string_view version) {
  return "/lookup/" + escape_case(module_path) + "@" + escape_case(version);
}

bool is_sumdb(endpoint kind) {
  return kind == endpoint::sumdb_supported || kind == endpoint::sumdb_lookup ||
         kind == endpoint::sumdb_tile || kind == endpoint::sumdb_latest;
}

std::string percent_encode(std::string_view in, std::string_view also_kept) {
  static constexpr std::string_view hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (unsigned char c : in) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved || also_kept.find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

bool percent_decode(std::string_view in, std::string& out) {
  if (in.find('%') == std::string_view::npos) {
    // Nothing encoded, the usual case: one copy instead of one append per byte.
    out.clear();
    if (in.find('\0') != std::string_view::npos) return false;
    out.assign(in);
    return true;
  }
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

outcome_of<module_request> parse_module_request(std::string_view target) {
  // The go command never sends a query or fragment; accepting one would split the cache key.
  // One pass: find_first_of with a set searches the set once per character of the target.
  if (std::any_of(target.begin(), target.end(), [](char c) { return c == '?' || c == '#'; })) {
    return invalid_request("query strings and fragments are not part of the GOPROXY protocol");
  }
  if (target.empty() || target.front() != '/')
    return invalid_request("request target must start with '/'");
  // Nothing percent-encoded, the usual case: the target is its own decoding, read in place
  // instead of copied into a string allocated for every request.
  std::string decoded_copy;
  std::string_view decoded = target;
  if (target.find('%') != std::string_view::npos || target.find('\0') != std::string_view::npos) {
    if (!percent_decode(target, decoded_copy)) {
      return invalid_request("invalid percent-encoding in request path");
    }
    decoded = decoded_copy;
  }

  if (decoded.starts_with("/sumdb/")) {
    return parse_sumdb_request(decoded.substr(std::string_view("/sumdb/").size()));
  }
  module_request request;
  std::string_view rest = decoded.substr(1);
  std::string_view escaped_path;
  std::string_view escaped_version;
  if (rest.ends_with("/@latest")) {
    request.kind = endpoint::latest;
    escaped_path = rest.substr(0, rest.size() - std::string_view("/@latest").size());
  } else {
    // Module paths cannot contain '@' and versions cannot contain '/', so only the last
    // "/@v/" can be the real separator.
    const auto at = rest.rfind("/@v/");
    if (at == std::string_view::npos) return invalid_request("unknown endpoint");
    escaped_path = rest.substr(0, at);
    const auto file = rest.substr(at + std::string_view("/@v/").size());
    if (file == "list") {
      request.kind = endpoint::list;
    } else {
      const file_suffix* match = nullptr;
      for (const auto& suffix : file_suffixes) {
        if (file.ends_with(suffix.text)) match = &suffix;
      }
      if (match == nullptr) return invalid_request("unknown endpoint");
      request.kind = match->kind;
      escaped_version = file.substr(0, file.size() - match->text.size());
    }
  }

  // Before anything else looks at them: an element too long to be a file name is never a module,
  // whatever its bytes, and its reason should not echo kilobytes back.
  if (auto fits = check_file_name_lengths(escaped_path, escaped_version); !fits) {
    return invalid_request(std::move(fits.error().detail));
  }
  auto path = unescape_case(escaped_path);
  if (!path) return invalid_request("invalid escaped module path " + quote(escaped_path));
  if (auto checked = check_path(*path); !checked)
    return invalid_request(std::move(checked.error().detail));
  request.module_path = std::move(*path);

  if (request.kind != endpoint::list && request.kind != endpoint::latest) {
    auto version = unescape_case(escaped_version);
    if (!version) return invalid_request("invalid escaped version " + quote(escaped_version));
    if (!is_valid_file_element(*version)) {
      return invalid_request("invalid escaped version " + quote(escaped_version) +
                             ": disallowed version string");
    }
    const bool canonical = canonical_version(*version) == *version;
    auto fits = canonical ? check_version_of_checked_path(request.module_path, *version)
                          : outcome_of<void>{};
    if (request.kind == endpoint::info) {
      // Anything else is a revision query the upstream resolves ("master", "v1.2", "v1.2.3+meta").
      if (!canonical || !fits) request.kind = endpoint::query;
    } else {
      if (!canonical) return invalid_request("version " + quote(*version) + " is not canonical");
      if (!fits) return invalid_request(std::move(fits.error().detail));
    }
    request.version = std::move(*version);
  }

  auto& upstream_path = request.upstream_path;
  // Room for the escapes of a few capitals without growing.
  upstream_path.reserve(request.module_path.size() + request.version.size() + 24);
  upstream_path += '/';
  append_escaped_encoded(upstream_path, request.module_path);
  if (!request.version.empty()) {
    upstream_path += "/@v/";
    append_escaped_encoded(upstream_path, request.version);
  }
  upstream_path += upstream_suffix(request.kind);
  request.cache_key = request.upstream_path;
  return request;
}

}  // namespace gomodproxy::protocol
