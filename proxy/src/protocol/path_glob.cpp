#include "protocol/path_glob.hpp"

#include <algorithm>
#include <optional>

#include "protocol/utf8.hpp"

namespace gomodproxy::protocol {

namespace {

struct chunk_scan {
  bool star = false;
  std::string_view chunk;
  std::string_view rest;
};

// Splits off leading stars and the literal/class run up to the next unbracketed '*'.
chunk_scan scan_chunk(std::string_view pattern) {
  chunk_scan out;
  while (!pattern.empty() && pattern.front() == '*') {
    pattern.remove_prefix(1);
    out.star = true;
  }
  bool in_range = false;
  std::size_t i = 0;
  for (; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      if (i + 1 < pattern.size()) ++i;
    } else if (c == '[') {
      in_range = true;
    } else if (c == ']') {
      in_range = false;
    } else if (c == '*' && !in_range) {
      break;
    }
  }
  out.chunk = pattern.substr(0, i);
  out.rest = pattern.substr(i);
  return out;
}

// One class bound, possibly '\'-escaped; nullopt for a malformed class.
std::optional<char32_t> take_class_char(std::string_view& chunk) {
  if (chunk.empty() || chunk.front() == '-' || chunk.front() == ']') return std::nullopt;
  if (chunk.front() == '\\') {
    chunk.remove_prefix(1);
    if (chunk.empty()) return std::nullopt;
  }
  const decoded_rune r = decode_rune(chunk);
  chunk.remove_prefix(r.size);
  if (!r.valid || chunk.empty()) return std::nullopt;
  return r.value;
}

struct chunk_match {
  bool ok = false;
  bool bad_pattern = false;
  std::string_view rest;
};

constexpr chunk_match malformed_pattern{false, true, {}};

// Matches `chunk` (no '*') against the front of `s`. After a mismatch the rest of the chunk is
// still parsed so that a malformed pattern is reported as such, as Go does.
chunk_match match_chunk(std::string_view chunk, std::string_view s) {
  bool failed = false;
  while (!chunk.empty()) {
    if (!failed && s.empty()) failed = true;
    switch (chunk.front()) {
      case '[': {
        char32_t r = 0;
        if (!failed) {
          const decoded_rune decoded = decode_rune(s);
          r = decoded.value;
          s.remove_prefix(decoded.size);
        }
        chunk.remove_prefix(1);
        bool negated = false;
        if (!chunk.empty() && chunk.front() == '^') {
          negated = true;
          chunk.remove_prefix(1);
        }
        bool matched = false;
        for (int ranges = 0;; ++ranges) {
          if (!chunk.empty() && chunk.front() == ']' && ranges > 0) {
            chunk.remove_prefix(1);
            break;
          }
          const auto lo = take_class_char(chunk);
          if (!lo) return malformed_pattern;
          auto hi = lo;
          if (chunk.front() == '-') {
            chunk.remove_prefix(1);
            hi = take_class_char(chunk);
            if (!hi) return malformed_pattern;
          }
          if (*lo <= r && r <= *hi) matched = true;
        }
        if (matched == negated) failed = true;
        break;
      }
      case '?':
        if (!failed) {
          if (s.front() == '/') failed = true;
          s.remove_prefix(decode_rune(s).size);
        }
        chunk.remove_prefix(1);
        break;
      case '\\':
        chunk.remove_prefix(1);
        if (chunk.empty()) return malformed_pattern;
        [[fallthrough]];
      default:
        if (!failed) {
          if (chunk.front() != s.front()) failed = true;
          s.remove_prefix(1);
        }
        chunk.remove_prefix(1);
    }
  }
  if (failed) return {};
  return {true, false, s};
}

}  // namespace

std::vector<std::string> parse_glob_list(std::string_view list) {
  std::vector<std::string> patterns;
  while (!list.empty()) {
    const auto comma = list.find(',');
    std::string_view glob = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (glob.ends_with('/')) glob.remove_suffix(1);
    if (!glob.empty()) patterns.emplace_back(glob);
  }
  return patterns;
}

bool path_match(std::string_view pattern, std::string_view name) {
  while (!pattern.empty()) {
    const chunk_scan scan = scan_chunk(pattern);
    pattern = scan.rest;
    // A trailing '*' matches the rest of the name unless it crosses a '/'.
    if (scan.star && scan.chunk.empty()) return name.find('/') == std::string_view::npos;
    const chunk_match here = match_chunk(scan.chunk, name);
    // The last chunk must consume the whole name; otherwise a star may still find a later fit.
    if (here.ok && (here.rest.empty() || !pattern.empty())) {
      name = here.rest;
      continue;
    }
    if (here.bad_pattern) return false;
    bool advanced = false;
    if (scan.star) {
      for (std::size_t i = 0; i < name.size() && name[i] != '/'; ++i) {
        const chunk_match later = match_chunk(scan.chunk, name.substr(i + 1));
        if (later.ok) {
          if (pattern.empty() && !later.rest.empty()) continue;
          name = later.rest;
          advanced = true;
          break;
        }
        if (later.bad_pattern) return false;
      }
    }
    if (!advanced) return false;
  }
  return name.empty();
}

bool match_prefix_patterns(const std::vector<std::string>& patterns, std::string_view path) {
  for (const auto& glob : patterns) {
    // A glob of N elements is matched against the first N elements of the path.
    auto slashes = std::count(glob.begin(), glob.end(), '/');
    std::string_view prefix = path;
    for (std::size_t i = 0; i < path.size(); ++i) {
      if (path[i] != '/') continue;
      if (slashes == 0) {
        prefix = path.substr(0, i);
        break;
      }
      --slashes;
    }
    if (slashes > 0) continue;
    if (path_match(glob, prefix)) return true;
  }
  return false;
}

}  // namespace gomodproxy::protocol
