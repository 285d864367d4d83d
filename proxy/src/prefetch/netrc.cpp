#include "prefetch/netrc.hpp"

#include <cstdlib>
#include <vector>

namespace gomodproxy::prefetch {

namespace {

struct machine {
  std::string name;
  netrc_entry entry;
};

// cmd/go/internal/auth/netrc.go: whitespace-separated words, line by line; `default` ends the
// file and a `macdef` runs until the next blank line.
std::vector<machine> parse_machines(std::string_view text) {
  std::vector<machine> machines;
  std::optional<machine> current;
  bool in_macro = false;
  auto finish = [&] {
    if (current && !current->entry.login.empty() && !current->entry.password.empty())
      machines.push_back(std::move(*current));
    current.reset();
  };
  while (!text.empty()) {
    const auto end = text.find('\n');
    auto line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    std::vector<std::string_view> words;
    for (std::size_t i = 0; i < line.size();) {
      if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
        ++i;
        continue;
      }
      const auto start = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
      words.push_back(line.substr(start, i - start));
    }
    if (in_macro) {
      if (words.empty()) in_macro = false;
      continue;
    }
    for (std::size_t i = 0; i < words.size(); ++i) {
      const auto word = words[i];
      if (word == "default") {
        finish();
        return machines;
      }
      if (word == "macdef") {
        in_macro = true;
        break;
      }
      if (i + 1 >= words.size()) continue;
      if (word == "machine") {
        finish();
        current = machine{std::string(words[++i]), {}};
      } else if (word == "login" && current) {
        current->entry.login = std::string(words[++i]);
      } else if (word == "password" && current) {
        current->entry.password = std::string(words[++i]);
      }
    }
  }
  finish();
  return machines;
}

}  // namespace

std::optional<netrc_entry> find_netrc_entry(std::string_view text, std::string_view host,
                                            std::string_view port) {
  const auto machines = parse_machines(text);
  std::vector<std::string> names;
  if (!port.empty()) names.push_back(std::string(host) + ":" + std::string(port));
  names.emplace_back(host);
  for (const auto& name : names) {
    for (const auto& m : machines) {
      if (m.name == name) return m.entry;
    }
  }
  return std::nullopt;
}

std::string netrc_path() {
  if (const char* set = std::getenv("NETRC"); set && *set) return set;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.netrc";
}

}  // namespace gomodproxy::prefetch
