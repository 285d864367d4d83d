// The settings loader over all three sources: each input is a TOML config file, which also
// carries the environment and the flags in comment lines, so every seed stays a valid file:
//   # GOMODPROXY_LIST_TTL=90s      an environment variable
//   # --listen 127.0.0.1:0         a flag (split at the first space into flag and value words)
// The file is written to a scratch path and named with --config. Invariants: an error is one
// line, free of control characters, that starts with "gomodproxy: "; loaded settings satisfy what
// the proxy relies on at start-up (parsed tier lists, a key for every checksum database, a
// checksum database when verification is on, timeouts greater than zero).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/settings.hpp"

namespace {

using gomodproxy::config::load_settings;
using gomodproxy::config::settings;

void require(bool holds) {
  if (!holds) std::abort();
}

// In memory when the machine has /dev/shm: on ext4 every input otherwise waits for the disk.
const std::string& scratch_file() {
  static const std::string path =
      ((std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                  : std::filesystem::temp_directory_path()) /
       ("gomodproxy-fuzz-config-" + std::to_string(::getpid()) + ".toml"))
          .string();
  return path;
}

void check_error(const gomodproxy::failure& error) {
  require(error.detail.starts_with("gomodproxy: "));
  for (char c : error.detail) {
    const auto byte = static_cast<unsigned char>(c);
    require(byte >= 0x20 && byte != 0x7f);
  }
}

void check_settings(const settings& s) {
  require(!s.upstreams.empty());
  require(!s.private_upstreams.empty());
  require(s.verify == "sumdb" || s.verify == "off");
  if (s.verify == "sumdb") require(!s.sumdbs.empty());
  for (const auto& database : s.sumdbs) {
    require(!database.name.empty() && !database.tiers.empty());
    require(database.key.starts_with(database.name + "+"));
  }
  for (const auto timeout :
       {s.connect_timeout, s.first_byte_timeout, s.fill_timeout, s.request_timeout, s.idle_timeout,
        s.write_timeout, s.drain_timeout, s.breaker_retry_after}) {
    require(timeout.count() > 0);
  }
  require(s.list_ttl.count() > 0 && s.negative_ttl.count() > 0);
  require(s.probe_interval.count() >= 0);
  require(!s.hedge_after || s.hedge_after->count() >= 0);
  require(s.stall_min.count() > 0 && s.stall_min <= s.stall_max);
  require(s.max_header_bytes >= 1024 && s.max_connections >= 1);
  require(s.fill_threads >= 1 && s.io_threads >= 0 && s.check_threads >= 0 && s.read_threads >= 0);
  require(s.direct_concurrency >= 1 && s.direct_concurrency <= 64);
  require(!s.go_binary.empty() && s.go_binary.find('\n') == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view file(reinterpret_cast<const char*>(data), size);
  {
    std::ofstream out(scratch_file(), std::ios::binary | std::ios::trunc);
    out.write(file.data(), static_cast<std::streamsize>(file.size()));
    require(out.good());
  }
  std::vector<std::string> args = {"--config", scratch_file()};
  std::map<std::string, std::string> environment;
  std::string_view rest = file;
  while (!rest.empty()) {
    const auto end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    // The config file stays the scratch file: a path from the input could name /dev/zero.
    if (line.starts_with("# GOMODPROXY_") && !line.starts_with("# GOMODPROXY_CONFIG")) {
      const auto assignment = line.substr(2);
      const auto eq = assignment.find('=');
      if (eq == std::string_view::npos) continue;
      environment[std::string(assignment.substr(0, eq))] = std::string(assignment.substr(eq + 1));
    } else if (line.starts_with("# --") && !line.starts_with("# --config")) {
      const auto words = line.substr(2);
      const auto space = words.find(' ');
      args.emplace_back(words.substr(0, space));
      if (space != std::string_view::npos) args.emplace_back(words.substr(space + 1));
    }
  }

  const auto loaded = load_settings(args, environment);
  std::filesystem::remove(scratch_file());
  if (!loaded) {
    check_error(loaded.error());
  } else {
    check_settings(*loaded);
  }
  return 0;
}
