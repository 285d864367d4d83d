#include "probe_report/probe_command.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>

#include "common/read_file.hpp"
#include "probe_report/probe_options.hpp"
#include "probe_report/probe_report.hpp"
#include "protocol/escape.hpp"
#include "upstream/http_client.hpp"

namespace gomodproxy::probe_report {

namespace {

constexpr int exit_ran = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

// A modules file is a few bytes a line; a limit keeps a wrong path (a disk image) from filling
// memory.
constexpr std::size_t max_file_bytes = std::size_t{16} * 1024 * 1024;

struct file_closer {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

int usage_error(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  return exit_usage;
}

}  // namespace

int run_probe_command(const std::vector<std::string>& args) {
  auto parsed = parse_probe_flags(args);
  if (!parsed) return usage_error(parsed.error().detail);
  auto& options = *parsed;
  if (options.help) {
    std::fputs(probe_usage_text().c_str(), stdout);
    return exit_ran;
  }

  if (options.modules_file) {
    const auto shown = protocol::quote(*options.modules_file);
    auto text = read_file(*options.modules_file, max_file_bytes);
    if (!text) {
      return usage_error("gomodproxy probe: --modules: cannot read " + shown + ": " +
                         text.error().detail);
    }
    auto modules = parse_module_list(*text);
    if (!modules) {
      return usage_error("gomodproxy probe: --modules: " + shown + " " + modules.error().detail);
    }
    options.sweep.modules = *std::move(modules);
  } else {
    options.sweep.modules = default_module_targets();
  }
  if (!options.sweep.ca_file.empty()) {
    std::unique_ptr<std::FILE, file_closer> ca(std::fopen(options.sweep.ca_file.c_str(), "rb"));
    if (!ca) {
      return usage_error("gomodproxy probe: --ca-file: cannot read " +
                         protocol::quote(options.sweep.ca_file) + ": " + std::strerror(errno));
    }
    if (auto bundle = upstream::check_ca_bundle(options.sweep.ca_file); !bundle) {
      return usage_error("gomodproxy probe: --ca-file: " + protocol::quote(options.sweep.ca_file) +
                         " is not a CA bundle (" + bundle.error().detail + ")");
    }
  }

  try {
    auto run = run_sweep(options.sweep, [](std::string_view line) {
      std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    });
    const auto text = render(summarize(run), options.format);
    if (std::fputs(text.c_str(), stdout) < 0 || std::fflush(stdout) != 0) {
      std::fprintf(stderr, "gomodproxy probe: cannot write the report: %s\n", std::strerror(errno));
      return exit_failed;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gomodproxy probe: %s\n", e.what());
    return exit_failed;
  }
  return exit_ran;
}

}  // namespace gomodproxy::probe_report
