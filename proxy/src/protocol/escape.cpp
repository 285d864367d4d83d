#include "protocol/escape.hpp"

#include <algorithm>
#include <string_view>

namespace gomodproxy::protocol {

namespace {

bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }

}  // namespace

std::string escape_case(std::string_view s) {
  // Module paths are mostly lower case: then the escaped form is the path itself.
  if (std::none_of(s.begin(), s.end(), is_upper)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    if (is_upper(c)) {
      out += '!';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> unescape_case(std::string_view s) {
  // Without a '!' the text is its own unescaping, once no byte is upper case or non-ASCII.
  if (s.find('!') == std::string_view::npos) {
    for (char c : s) {
      if (static_cast<unsigned char>(c) >= 0x80 || is_upper(c)) return std::nullopt;
    }
    return std::string(s);
  }
  std::string out;
  out.reserve(s.size());
  bool bang = false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80 || is_upper(c)) return std::nullopt;
    if (bang) {
      if (c < 'a' || c > 'z') return std::nullopt;
      out += static_cast<char>(c - 'a' + 'A');
      bang = false;
    } else if (c == '!') {
      bang = true;
    } else {
      out += c;
    }
  }
  if (bang) return std::nullopt;
  return out;
}

std::string quote(std::string_view s, const quote_options& options) {
  static constexpr std::string_view hex = "0123456789abcdef";
  const bool cut = s.size() > options.max_bytes;
  if (cut) s = s.substr(0, options.max_bytes);
  std::string out;
  out.reserve(s.size() + 8);
  if (options.quotes) out += '"';
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (options.quotes && (c == '"' || c == '\\')) {
      out += '\\';
      out += c;
    } else if (options.named_controls && c == '\n') {
      out += "\\n";
    } else if (options.named_controls && c == '\r') {
      out += "\\r";
    } else if (options.named_controls && c == '\t') {
      out += "\\t";
    } else if (b < 0x20 || b >= 0x7f || c == '\\') {
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 0xf];
    } else {
      out += c;
    }
  }
  if (options.quotes) out += '"';
  if (cut) out += "...";
  return out;
}

std::string_view trim_space(std::string_view s) {
  constexpr std::string_view space = " \t\n\v\f\r";
  const auto first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

}  // namespace gomodproxy::protocol
