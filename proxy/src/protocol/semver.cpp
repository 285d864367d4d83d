#include "protocol/semver.hpp"

#include <algorithm>
#include <optional>

namespace gomodproxy::protocol {

namespace {

struct parsed_version {
  std::string_view major;
  std::string_view minor;
  std::string_view patch;
  std::string_view short_suffix;  // ".0.0" or ".0" when v was a shorthand, else empty
  std::string_view prerelease;    // with its leading '-'
  std::string_view build;         // with its leading '+'
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_ident_char(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

bool is_numeric(std::string_view s) {
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return !s.empty();
}

// Numeric identifiers with leading zeros are not semver ("01"), but "0" is.
bool is_bad_number(std::string_view s) { return is_numeric(s) && s.size() > 1 && s[0] == '0'; }

// Consumes a decimal number without leading zeros from the front of `rest`.
std::optional<std::string_view> take_number(std::string_view& rest) {
  std::size_t n = 0;
  while (n < rest.size() && is_digit(rest[n])) ++n;
  if (n == 0 || (rest[0] == '0' && n > 1)) return std::nullopt;
  const auto number = rest.substr(0, n);
  rest.remove_prefix(n);
  return number;
}

// Dot-separated non-empty identifiers after the lead byte; pre-release numbers reject leading 0.
bool valid_identifiers(std::string_view s, bool check_numbers) {
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i < s.size() && s[i] != '.') {
      if (!is_ident_char(s[i])) return false;
      continue;
    }
    const auto ident = s.substr(start, i - start);
    if (ident.empty() || (check_numbers && is_bad_number(ident))) return false;
    start = i + 1;
  }
  return true;
}

std::optional<parsed_version> parse(std::string_view v) {
  if (v.empty() || v[0] != 'v') return std::nullopt;
  std::string_view rest = v.substr(1);
  parsed_version p;
  const auto major = take_number(rest);
  if (!major) return std::nullopt;
  p.major = *major;
  if (rest.empty()) {
    p.minor = p.patch = "0";
    p.short_suffix = ".0.0";
    return p;
  }
  if (rest[0] != '.') return std::nullopt;
  rest.remove_prefix(1);
  const auto minor = take_number(rest);
  if (!minor) return std::nullopt;
  p.minor = *minor;
  if (rest.empty()) {
    p.patch = "0";
    p.short_suffix = ".0";
    return p;
  }
  if (rest[0] != '.') return std::nullopt;
  rest.remove_prefix(1);
  const auto patch = take_number(rest);
  if (!patch) return std::nullopt;
  p.patch = *patch;
  if (!rest.empty() && rest[0] == '-') {
    const auto end = rest.find('+');
    p.prerelease = rest.substr(0, end);
    if (!valid_identifiers(p.prerelease.substr(1), true)) return std::nullopt;
    rest.remove_prefix(p.prerelease.size());
  }
  if (!rest.empty() && rest[0] == '+') {
    p.build = rest;
    if (!valid_identifiers(p.build.substr(1), false)) return std::nullopt;
    rest = {};
  }
  if (!rest.empty()) return std::nullopt;
  return p;
}

// Both are numbers without leading zeros, so length decides before the digits do.
int compare_numbers(std::string_view x, std::string_view y) {
  if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
  return x < y ? -1 : (x > y ? 1 : 0);
}

std::string_view next_identifier(std::string_view& s) {
  const auto dot = s.find('.');
  const auto ident = s.substr(0, dot);
  s = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
  return ident;
}

// Semver §11: a release outranks its pre-releases; identifiers compare numerically when both are
// numbers, numbers rank below words, and a longer list wins a tie.
int compare_prerelease(std::string_view x, std::string_view y) {
  if (x == y) return 0;
  if (x.empty()) return 1;
  if (y.empty()) return -1;
  x.remove_prefix(1);
  y.remove_prefix(1);
  while (!x.empty() && !y.empty()) {
    const auto dx = next_identifier(x);
    const auto dy = next_identifier(y);
    if (dx == dy) continue;
    const bool nx = is_numeric(dx);
    const bool ny = is_numeric(dy);
    if (nx != ny) return nx ? -1 : 1;
    if (nx) return compare_numbers(dx, dy);
    return dx < dy ? -1 : 1;
  }
  return x.empty() ? (y.empty() ? 0 : -1) : 1;
}

}  // namespace

bool is_valid_semver(std::string_view v) { return parse(v).has_value(); }

std::string canonical_version(std::string_view v) {
  const auto p = parse(v);
  if (!p) return {};
  std::string out(v.substr(0, v.size() - p->build.size()));
  out += p->short_suffix;
  // module.CanonicalVersion: "+incompatible" is part of the module version's identity.
  if (p->build == "+incompatible") out += p->build;
  return out;
}

int compare_versions(std::string_view a, std::string_view b) {
  const auto pa = parse(a);
  const auto pb = parse(b);
  if (!pa || !pb) return pa ? 1 : (pb ? -1 : 0);
  if (int c = compare_numbers(pa->major, pb->major); c != 0) return c;
  if (int c = compare_numbers(pa->minor, pb->minor); c != 0) return c;
  if (int c = compare_numbers(pa->patch, pb->patch); c != 0) return c;
  return compare_prerelease(pa->prerelease, pb->prerelease);
}

std::string major_of(std::string_view v) {
  const auto p = parse(v);
  if (!p) return {};
  return "v" + std::string(p->major);
}

bool is_pseudo_version(std::string_view v) {
  // module.IsPseudoVersion: at least two '-', valid semver, and the shape
  //   v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+build)?
  // Semver validity already fixes the numbers and the build, so only the pre-release is matched:
  // "<14 digits>-<rev>" on vX.0.0, or "[<anything>.]0.<14 digits>-<rev>".
  if (std::count(v.begin(), v.end(), '-') < 2) return false;
  const auto p = parse(v);
  if (!p || p->prerelease.empty()) return false;
  std::string_view pre = p->prerelease.substr(1);
  const auto dash = pre.rfind('-');
  if (dash == std::string_view::npos || dash + 1 == pre.size()) return false;
  for (char c : pre.substr(dash + 1)) {
    if (!is_ident_char(c) || c == '-') return false;
  }
  pre = pre.substr(0, dash);
  if (pre.size() < 14 || !is_numeric(pre.substr(pre.size() - 14))) return false;
  pre.remove_suffix(14);
  if (pre.empty()) return p->minor == "0" && p->patch == "0";
  if (!pre.ends_with("0.")) return false;
  pre.remove_suffix(2);
  return pre.empty() || pre.ends_with('.');
}

}  // namespace gomodproxy::protocol
