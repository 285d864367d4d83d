#include "direct/go_errors.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <regex>
#include <sstream>

#include "protocol/request.hpp"

namespace gomodproxy::direct {
namespace {

// Shorter "secrets" would blot out ordinary words of every message.
constexpr std::size_t shortest_secret = 4;

void replace_all(std::string& text, std::string_view what, std::string_view with) {
  if (what.empty()) return;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + with.size())) {
    text.replace(at, what.size(), with);
  }
}

// How much of a go command's message is looked at. git puts whatever the remote says into
// it (a hostile server can send tens of kilobytes on one line), and std::regex recurses once per
// character of a match: a 60 KiB line overflows the stack. A reason shows 300 bytes anyway.
constexpr std::size_t condensed_window = 4096;
constexpr std::size_t classified_head_and_tail = std::size_t{32} * 1024;

bool is_scheme_byte(unsigned char c) { return std::isalnum(c) || c == '+' || c == '.' || c == '-'; }

bool ends_userinfo_search(unsigned char c) {
  return c == '/' || c == '\'' || c == '"' || std::isspace(c);
}

// Removes the userinfo of every URL: everything between "scheme://" and the last '@' before
// the host's end. By hand, in one pass: the regex for it takes time quadratic in the length of
// a run of letters (seconds for a few KiB).
void remove_userinfo(std::string& text) {
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  for (auto at = text.find("://"); at != std::string::npos; at = text.find("://", at + 1)) {
    std::size_t scheme = at;
    while (scheme > 0 && is_scheme_byte(static_cast<unsigned char>(text[scheme - 1]))) --scheme;
    const bool has_letter = std::any_of(text.begin() + static_cast<std::ptrdiff_t>(scheme),
                                        text.begin() + static_cast<std::ptrdiff_t>(at),
                                        [](unsigned char c) { return std::isalpha(c); });
    if (!has_letter) continue;
    const std::size_t start = at + 3;
    std::size_t end = start;
    std::size_t last_at = std::string::npos;
    while (end < text.size() && !ends_userinfo_search(static_cast<unsigned char>(text[end]))) {
      if (text[end] == '@') last_at = end;
      ++end;
    }
    if (last_at == std::string::npos) continue;
    out.append(text, copied, start - copied);
    copied = last_at + 1;
    at = last_at;
  }
  if (copied == 0) return;
  out.append(text, copied, std::string::npos);
  text = std::move(out);
}

struct scrub_rule {
  std::regex pattern;
  const char* replacement;
};

const std::vector<scrub_rule>& scrub_rules() {
  static const std::vector<scrub_rule> rules = [] {
    const auto flags = std::regex::ECMAScript | std::regex::icase;
    std::vector<scrub_rule> out;
    out.push_back({std::regex(R"((authorization\s*:\s*)[^\r\n]*)", flags), "$1***"});
    out.push_back({std::regex(R"((proxy-authorization\s*:\s*)[^\r\n]*)", flags), "$1***"});
    out.push_back({std::regex(R"((x-access-token:)[^@\s'"]+)", flags), "$1***"});
    out.push_back({std::regex(R"((oauth2:)[^@\s'"]+@)", flags), "$1***@"});
    out.push_back(
        {std::regex(R"(\b(bearer|basic|token)\s+[a-z0-9._~+/=\-]{8,})", flags), "$1 ***"});
    out.push_back(
        {std::regex(R"(\b(ghp|gho|ghu|ghs|ghr|github_pat|glpat)[_\-][a-z0-9_\-]{10,})", flags),
         "***"});
    return out;
  }();
  return rules;
}

}  // namespace

std::vector<std::string> netrc_passwords(std::string_view netrc_text) {
  std::vector<std::string> out;
  std::istringstream lines{std::string(netrc_text)};
  std::string line;
  bool in_macro = false;
  std::string previous;
  while (std::getline(lines, line)) {
    if (in_macro) {
      // A macro definition runs to the first empty line.
      if (line.find_first_not_of(" \t\r") == std::string::npos) in_macro = false;
      continue;
    }
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      if (previous == "password") out.push_back(word);
      if (word == "macdef" && previous != "password") {
        in_macro = true;
        previous.clear();
        break;
      }
      previous = word;
    }
  }
  return out;
}

std::vector<std::string> known_secrets(const std::map<std::string, std::string>& environment) {
  // The go command reads $NETRC when set, git always $HOME/.netrc: either may hold a password.
  std::vector<std::string> paths;
  if (auto it = environment.find("NETRC"); it != environment.end() && !it->second.empty()) {
    paths.push_back(it->second);
  }
  if (auto home = environment.find("HOME"); home != environment.end() && !home->second.empty()) {
    paths.push_back(home->second + "/.netrc");
  }
  std::vector<std::string> out;
  for (const auto& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) continue;
    std::ostringstream text;
    text << in.rdbuf();
    for (auto& password : netrc_passwords(text.str())) {
      if (std::find(out.begin(), out.end(), password) == out.end())
        out.push_back(std::move(password));
    }
  }
  return out;
}

std::string scrub(std::string_view text, const std::vector<std::string>& secrets) {
  std::string out(text);
  // Known secrets first, while they are whole: a rule below could cut one in two.
  for (const auto& secret : secrets) {
    if (secret.size() < shortest_secret) continue;
    replace_all(out, secret, "***");
    replace_all(out, protocol::percent_encode(secret), "***");
  }
  remove_userinfo(out);
  for (const auto& rule : scrub_rules())
    out = std::regex_replace(out, rule.pattern, rule.replacement);
  return out;
}

std::string condense(std::string_view subcommand, std::string_view message,
                     const std::vector<std::string>& secrets, std::string_view private_dir) {
  if (message.size() > condensed_window) {
    // Back to a blank, so that no secret or URL is cut in two and left half unrecognised.
    message = message.substr(0, condensed_window);
    const auto blank = message.find_last_of(" \t\r\n");
    message = message.substr(0, blank == std::string_view::npos ? 0 : blank);
  }
  std::string text = scrub(message, secrets);
  // Where the fetcher keeps its clones says nothing to a client, and costs the 300 bytes.
  if (!private_dir.empty()) {
    const std::string marker = " in " + std::string(private_dir);
    for (auto at = text.find(marker); at != std::string::npos; at = text.find(marker, at)) {
      auto end = text.find_first_of(": \t\r\n", at + marker.size());
      text.erase(at, (end == std::string::npos ? text.size() : end) - at);
    }
    replace_all(text, private_dir, "<direct>");
  }
  std::string line;
  bool pending_space = false;
  std::istringstream lines(text);
  std::string piece;
  while (std::getline(lines, piece)) {
    auto first = piece.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    std::string_view rest = std::string_view(piece).substr(first);
    if (rest.starts_with("go: ")) rest.remove_prefix(4);
    if (!line.empty()) pending_space = true;
    for (char c : rest) {
      const auto byte = static_cast<unsigned char>(c);
      const bool blank = byte < 0x20 || byte == 0x7f;
      if (blank) {
        pending_space = !line.empty();
        continue;
      }
      if (pending_space) line += ' ';
      pending_space = false;
      line += c;
    }
  }
  while (!line.empty() && (line.back() == ' ' || line.back() == ':')) line.pop_back();
  std::string out = std::string(subcommand) + ": " + line;
  if (out.size() > max_reason_bytes) {
    std::size_t cut = max_reason_bytes - 3;
    // Never in the middle of a UTF-8 sequence.
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out = out.substr(0, cut) + "...";
  }
  return out;
}

upstream::outcome classify_failure(std::string_view message) {
  static const std::regex transient(
      R"(connection refused|connection reset|connection timed out|i/o timeout|tls handshake timeout|timeout awaiting response headers|temporary failure in name resolution|server misbehaving|no route to host|network is unreachable|connect tunnel failed, response 50[0-9]|gateway timeout|signal: killed|no space left on device|disk quota exceeded|read-only file system|too many open files|cannot allocate memory|returned error: 5[0-9][0-9]|\bhttp 5[0-9][0-9]\b|\b5[0-9][0-9] (internal server error|bad gateway|service unavailable|gateway timeout)|status 5[0-9][0-9]\b)",
      std::regex::ECMAScript | std::regex::icase);
  auto shows_transient = [](std::string_view part) {
    const std::string text(part);
    return std::regex_search(text, transient);
  };
  // The network failure is said near the start (the go command's own) or at the end (git's
  // last line); what a remote said in between may be long.
  const bool transient_failure =
      message.size() <= 2 * classified_head_and_tail
          ? shows_transient(message)
          : shows_transient(message.substr(0, classified_head_and_tail)) ||
                shows_transient(message.substr(message.size() - classified_head_and_tail));
  return transient_failure ? upstream::outcome::error : upstream::outcome::not_found;
}

}  // namespace gomodproxy::direct
