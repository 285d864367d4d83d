#include "prefetch/pin_sources.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "common/read_file.hpp"
#include "protocol/escape.hpp"

namespace gomodproxy::prefetch {

namespace {

namespace fs = std::filesystem;

// A go.sum of a large monorepo is a few MiB; far beyond that the argument is a mistake.
constexpr std::size_t max_file_bytes = std::size_t{64} * 1024 * 1024;

enum class file_kind { go_sum, go_mod, go_work };

std::optional<file_kind> kind_of(const fs::path& path) {
  const auto name = path.filename().string();
  // go.work.sum has go.sum's syntax.
  if (name.ends_with(".sum")) return file_kind::go_sum;
  if (name.ends_with(".mod")) return file_kind::go_mod;
  if (name.ends_with(".work")) return file_kind::go_work;
  return std::nullopt;
}

bool is_pin_file_name(const std::string& name) {
  return name == "go.mod" || name == "go.sum" || name == "go.work" || name == "go.work.sum";
}

// cmd/go's module walk: vendor and testdata hold no modules of their own, and "." and "_"
// directories are ignored by every go command.
bool skipped_directory(const std::string& name) {
  return name == "vendor" || name == "testdata" || name.starts_with(".") || name.starts_with("_");
}

class collector {
 public:
  void read(const fs::path& path, file_kind kind) {
    std::error_code ec;
    auto key = fs::weakly_canonical(path, ec);
    if (ec) key = fs::absolute(path);
    if (!seen_.insert(key).second) return;
    const auto shown = path.string();
    const auto bytes = read_file(shown, max_file_bytes);
    if (!bytes) {
      out_.problems.push_back(shown + ": " + bytes.error().detail);
      return;
    }
    const std::string& text = *bytes;
    out_.files.push_back(shown);
    switch (kind) {
      case file_kind::go_sum:
        add(shown, parse_go_sum(text));
        break;
      case file_kind::go_mod:
        add(shown, parse_go_mod(text));
        break;
      case file_kind::go_work: {
        auto work = parse_go_work(text);
        add(shown, std::move(work.replaced));
        const auto base = path.parent_path();
        for (const auto& dir : work.use_dirs) {
          const auto module_dir = fs::path(dir).is_absolute() ? fs::path(dir) : base / dir;
          if (!fs::is_regular_file(module_dir / "go.mod", ec)) {
            out_.problems.push_back(shown + ": use " + protocol::quote(dir) + ": no go.mod there");
            continue;
          }
          read(module_dir / "go.mod", file_kind::go_mod);
          if (fs::is_regular_file(module_dir / "go.sum", ec)) {
            read(module_dir / "go.sum", file_kind::go_sum);
          }
        }
        break;
      }
    }
  }

  void walk(const fs::path& root) {
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
    if (ec) {
      out_.problems.push_back(root.string() + ": " + ec.message());
      return;
    }
    // Sorted so the order of reading (and of the output) does not depend on the file system.
    std::vector<fs::path> found;
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) {
        out_.problems.push_back(it->path().string() + ": " + ec.message());
        break;
      }
      const auto name = it->path().filename().string();
      if (it->is_directory(ec)) {
        if (skipped_directory(name)) it.disable_recursion_pending();
        continue;
      }
      if (is_pin_file_name(name) && it->is_regular_file(ec)) found.push_back(it->path());
    }
    if (found.empty()) {
      // Most likely the wrong directory; a run that warms nothing must not look like success.
      out_.problems.push_back(root.string() + ": no go.mod, go.sum or go.work under it");
    }
    std::sort(found.begin(), found.end());
    for (const auto& path : found) read(path, *kind_of(path));
  }

  collected_pins finish() && { return std::move(out_); }

 private:
  void add(const std::string& shown, parsed_pins parsed) {
    for (const auto& problem : parsed.problems) out_.problems.push_back(shown + ": " + problem);
    for (auto& p : parsed.pins) {
      auto [it, inserted] = index_.emplace(std::pair(p.module_path, p.version), out_.pins.size());
      if (inserted) {
        out_.pins.push_back(std::move(p));
      } else if (!p.go_mod_only) {
        out_.pins[it->second].go_mod_only = false;
      }
    }
  }

  collected_pins out_;
  std::set<fs::path> seen_;
  std::map<std::pair<std::string, std::string>, std::size_t> index_;
};

}  // namespace

outcome_of<collected_pins> collect_pins(const std::vector<std::string>& arguments) {
  collector pins;
  for (const auto& argument : arguments) {
    const fs::path path(argument);
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
      return invalid_request("gomodproxy prefetch: " + protocol::quote(argument) +
                             ": no such file or directory");
    }
    if (fs::is_directory(status)) {
      pins.walk(path);
      continue;
    }
    auto kind = kind_of(path);
    if (!kind) {
      return invalid_request("gomodproxy prefetch: " + protocol::quote(argument) +
                             ": expected a go.sum, go.mod or go.work file or a directory");
    }
    pins.read(path, *kind);
  }
  return std::move(pins).finish();
}

}  // namespace gomodproxy::prefetch
