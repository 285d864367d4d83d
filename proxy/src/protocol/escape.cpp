#include "protocol/escape.hpp"

namespace gomodproxy::protocol {

namespace {

// Reasons echo client input; a cap keeps an 8 KiB target from becoming an 8 KiB error body.
constexpr std::size_t max_quoted_bytes = 128;

bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }

}  // namespace

std::string escape_case(std::string_view s) {
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

std::string quote(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  const bool cut = s.size() > max_quoted_bytes;
  if (cut) s = s.substr(0, max_quoted_bytes);
  std::string out;
  out.reserve(s.size() + 8);
  out += '"';
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (b < 0x20 || b >= 0x7f) {
          out += "\\x";
          out += hex[b >> 4];
          out += hex[b & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  if (cut) out += "...";
  return out;
}

}  // namespace gomodproxy::protocol
