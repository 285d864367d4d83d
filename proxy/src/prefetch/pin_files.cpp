#include "prefetch/pin_files.hpp"

#include <algorithm>
#include <functional>
#include <optional>

#include "common/failure.hpp"
#include "protocol/escape.hpp"
#include "protocol/module_path.hpp"
#include "protocol/semver.hpp"

namespace gomodproxy::prefetch {

namespace {

using protocol::trim_space;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string line_problem(std::size_t line_number, std::string_view reason) {
  return "line " + std::to_string(line_number) + ": " + std::string(reason);
}

// Succeeds when `version` of `module_path` can be asked of a proxy as written: the go command
// writes canonical versions only, and a proxy answers nothing else for .info/.mod/.zip. Fails
// with errc::invalid_request and the reason otherwise.
[[nodiscard]] outcome_of<void> check_pin(std::string_view module_path, std::string_view version) {
  if (auto checked = protocol::check_path(module_path); !checked) {
    return invalid_request("module path " + protocol::quote(module_path) + ": " +
                           checked.error().detail);
  }
  if (!protocol::is_valid_semver(version) || protocol::canonical_version(version) != version) {
    return invalid_request("version " + protocol::quote(version) + " of " +
                           std::string(module_path) + " is not a canonical semantic version");
  }
  if (auto checked = protocol::check_path_version(module_path, version); !checked) {
    return invalid_request(std::string(module_path) + "@" + std::string(version) + ": " +
                           checked.error().detail);
  }
  return {};
}

// The words of one go.mod/go.work line after its `//` comment is cut. A word may be a Go string
// ("..." with backslash escapes, or `...`), as modfile allows for paths; nullopt when a string
// is not closed.
std::optional<std::vector<std::string>> line_words(std::string_view line) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < line.size()) {
    if (is_space(line[i])) {
      ++i;
      continue;
    }
    if (line.substr(i, 2) == "//") break;
    std::string word;
    if (line[i] == '"' || line[i] == '`') {
      const char quote = line[i++];
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == quote) {
          closed = true;
          break;
        }
        if (quote == '"' && c == '\\' && i < line.size()) c = line[i++];
        word.push_back(c);
      }
      if (!closed) return std::nullopt;
    } else if (line[i] == '(' || line[i] == ')') {
      // modfile's lexer makes each parenthesis a token of its own: "require(" opens a block.
      word.push_back(line[i++]);
    } else {
      while (i < line.size() && !is_space(line[i]) && line[i] != '(' && line[i] != ')' &&
             line.substr(i, 2) != "//") {
        word.push_back(line[i++]);
      }
    }
    words.push_back(std::move(word));
  }
  return words;
}

// Calls `directive(verb, arguments, line_number)` for each directive of a go.mod or go.work,
// whether written on one line or inside a `verb ( ... )` block. Returns the lines that are not
// directives.
std::vector<std::string> for_each_directive(
    std::string_view text,
    const std::function<void(const std::string&, const std::vector<std::string>&, std::size_t)>&
        directive) {
  std::vector<std::string> problems;
  std::optional<std::string> block_verb;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const auto end = text.find('\n');
    const auto line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    auto words = line_words(line);
    if (!words) {
      problems.push_back(line_problem(line_number, "unterminated quoted string"));
      continue;
    }
    if (words->empty()) continue;
    if (block_verb) {
      if ((*words)[0] == ")") {
        block_verb.reset();
        continue;
      }
      directive(*block_verb, *words, line_number);
      continue;
    }
    const auto verb = (*words)[0];
    std::vector<std::string> arguments(words->begin() + 1, words->end());
    if (arguments.size() == 1 && arguments[0] == "(") {
      block_verb = verb;
      continue;
    }
    directive(verb, arguments, line_number);
  }
  if (block_verb) problems.push_back("a \"" + *block_verb + " (\" block is not closed");
  return problems;
}

// modfile.IsDirectoryPath: a replacement written as a file system path, never a module path.
bool is_directory_path(std::string_view path) {
  return path.starts_with("./") || path.starts_with("../") || path.starts_with("/") ||
         path.starts_with(".\\") || path.starts_with("..\\") || path == "." || path == ".." ||
         (path.size() >= 3 && path[1] == ':' && (path[2] == '\\' || path[2] == '/'));
}

struct replacement {
  std::string module_path;
  std::optional<std::string> version;  ///< nullopt: every version of the module
};

// A `replace` directive's arguments: records what it redirects in `redirected` and, for a
// module target, the pin in `parsed`.
void read_replace(const std::vector<std::string>& arguments, std::size_t line_number,
                  std::vector<replacement>& redirected, parsed_pins& parsed) {
  std::size_t arrow = 0;
  while (arrow < arguments.size() && arguments[arrow] != "=>") ++arrow;
  const auto left = arrow;
  const auto right = arguments.size() - std::min(arguments.size(), arrow + 1);
  if (arrow == arguments.size() || left < 1 || left > 2 || right < 1 || right > 2) {
    parsed.problems.push_back(line_problem(
        line_number, "replace: expected MODULE [VERSION] => MODULE VERSION or => DIRECTORY"));
    return;
  }
  redirected.push_back({arguments[0], left == 2 ? std::optional(arguments[1]) : std::nullopt});
  const auto& target = arguments[arrow + 1];
  if (right == 1) {
    if (!is_directory_path(target)) {
      parsed.problems.push_back(line_problem(line_number, "replace: " + protocol::quote(target) +
                                                              " is neither MODULE VERSION nor a "
                                                              "directory (./dir, ../dir, /dir)"));
    }
    return;
  }
  const auto& version = arguments[arrow + 2];
  if (auto pinned = check_pin(target, version); !pinned) {
    parsed.problems.push_back(line_problem(line_number, "replace: " + pinned.error().detail));
    return;
  }
  parsed.pins.push_back({target, version, false});
}

}  // namespace

parsed_pins parse_go_sum(std::string_view text) {
  parsed_pins parsed;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const auto end = text.find('\n');
    const auto line = trim_space(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty()) continue;
    std::vector<std::string_view> fields;
    for (std::size_t i = 0; i < line.size();) {
      if (is_space(line[i])) {
        ++i;
        continue;
      }
      auto start = i;
      while (i < line.size() && !is_space(line[i])) ++i;
      fields.push_back(line.substr(start, i - start));
    }
    if (fields.size() != 3) {
      parsed.problems.push_back(line_problem(line_number, "expected MODULE VERSION HASH"));
      continue;
    }
    if (fields[2].find(':') == std::string_view::npos) {
      parsed.problems.push_back(line_problem(line_number, "the hash has no \"h1:\"-like prefix"));
      continue;
    }
    auto version = fields[1];
    const bool go_mod_only = version.ends_with("/go.mod");
    if (go_mod_only) version.remove_suffix(std::string_view("/go.mod").size());
    if (auto pinned = check_pin(fields[0], version); !pinned) {
      parsed.problems.push_back(line_problem(line_number, pinned.error().detail));
      continue;
    }
    parsed.pins.push_back({std::string(fields[0]), std::string(version), go_mod_only});
  }
  return parsed;
}

parsed_pins parse_go_mod(std::string_view text) {
  parsed_pins required;
  parsed_pins replacements;
  std::vector<replacement> redirected;
  auto problems = for_each_directive(text, [&](const std::string& verb,
                                               const std::vector<std::string>& arguments,
                                               std::size_t line_number) {
    if (verb == "require") {
      if (arguments.size() != 2) {
        required.problems.push_back(line_problem(line_number, "require: expected MODULE VERSION"));
      } else if (auto pinned = check_pin(arguments[0], arguments[1]); !pinned) {
        required.problems.push_back(line_problem(line_number, "require: " + pinned.error().detail));
      } else {
        required.pins.push_back({arguments[0], arguments[1], false});
      }
    } else if (verb == "replace") {
      read_replace(arguments, line_number, redirected, replacements);
    }
  });
  parsed_pins parsed;
  for (auto& wanted : required.pins) {
    bool replaced = false;
    for (const auto& r : redirected) {
      replaced = replaced || (r.module_path == wanted.module_path &&
                              (!r.version || *r.version == wanted.version));
    }
    if (!replaced) parsed.pins.push_back(std::move(wanted));
  }
  for (auto& target : replacements.pins) parsed.pins.push_back(std::move(target));
  parsed.problems = std::move(problems);
  for (auto* list : {&required.problems, &replacements.problems}) {
    parsed.problems.insert(parsed.problems.end(), list->begin(), list->end());
  }
  return parsed;
}

parsed_work parse_go_work(std::string_view text) {
  parsed_work work;
  std::vector<replacement> redirected;
  auto problems = for_each_directive(
      text, [&](const std::string& verb, const std::vector<std::string>& arguments,
                std::size_t line_number) {
        if (verb == "use") {
          if (arguments.size() != 1) {
            work.replaced.problems.push_back(line_problem(line_number, "use: expected DIRECTORY"));
          } else {
            work.use_dirs.push_back(arguments[0]);
          }
        } else if (verb == "replace") {
          read_replace(arguments, line_number, redirected, work.replaced);
        }
      });
  work.replaced.problems.insert(work.replaced.problems.begin(), problems.begin(), problems.end());
  return work;
}

}  // namespace gomodproxy::prefetch
