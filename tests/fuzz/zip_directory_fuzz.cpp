// The module zip checker and hasher, and the central-directory reader under both: each input is a
// whole zip as an upstream would send it. The module path and version come from the first entry's
// name when it has the "<path>@<version>/" shape, so mutations of a real module zip reach the
// name, collision and limit checks. Invariants: neither check_module_zip nor zip_h1_hash accepts
// a zip whose directory cannot be read; every entry the reader returns lies before the central
// directory, its data too; an h1 hash has its fixed shape; a reader failure always surfaces as
// that failure, never as a verdict on the bytes.
#include <boost/system/errc.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/module_path.hpp"
#include "protocol/semver.hpp"
#include "sumdb/zip_check.hpp"
#include "sumdb/zip_directory.hpp"

namespace {

using namespace gomodproxy::sumdb;

void require(bool holds) {
  if (!holds) std::abort();
}

// Reads `zip` like a cache entry does, counting calls; call number `fail_at` fails.
struct counting_reader {
  std::string_view zip;
  std::size_t fail_at = SIZE_MAX;
  mutable std::size_t calls = 0;

  boost::system::result<std::string> operator()(std::uint64_t offset, std::size_t length) const {
    if (calls++ == fail_at)
      return boost::system::errc::make_error_code(boost::system::errc::io_error);
    if (offset >= zip.size()) return std::string();
    return std::string(zip.substr(static_cast<std::size_t>(offset), length));
  }
};

void check_directory(std::string_view zip) {
  counting_reader reader{zip};
  const auto directory = read_zip_directory(zip.size(), std::cref(reader));
  const std::size_t calls = reader.calls;
  if (directory) {
    require(directory->directory_offset <= zip.size());
    for (const auto& entry : directory->entries) {
      require(entry.local_header_offset < directory->directory_offset);
      const auto offset = entry_data_offset(*directory, entry, std::cref(reader));
      if (offset) {
        require(*offset <= directory->directory_offset);
        require(entry.compressed_size <= directory->directory_offset - *offset);
      }
    }
  } else {
    require(!directory.error().detail.empty());
    require(directory.error().code == gomodproxy::errc::verification_failed);
  }
  // The same reads again, the first or the last of them failing: the failure must come back as
  // the reader's error.
  for (const std::size_t fail_at : {std::size_t{0}, calls - 1}) {
    if (calls == 0) break;
    counting_reader failing{zip, fail_at};
    const auto failed = read_zip_directory(zip.size(), std::cref(failing));
    require(!failed && failed.error().code == boost::system::errc::io_error);
  }
}

// "<path>@<version>/..." of the first entry, or a fixed module that matches none.
std::pair<std::string, std::string> module_of(std::string_view zip) {
  counting_reader reader{zip};
  const auto directory = read_zip_directory(zip.size(), std::cref(reader));
  if (directory && !directory->entries.empty()) {
    const std::string_view name = directory->entries.front().name;
    const auto slash = name.find('/', name.find('@'));
    const auto at = name.rfind('@', slash);
    if (at != std::string_view::npos && slash != std::string_view::npos) {
      std::string path(name.substr(0, at));
      std::string version(name.substr(at + 1, slash - at - 1));
      if (gomodproxy::protocol::check_path(path) &&
          gomodproxy::protocol::canonical_version(version) == version &&
          gomodproxy::protocol::check_path_version(path, version)) {
        return {std::move(path), std::move(version)};
      }
    }
  }
  return {"example.com/hello", "v1.2.0"};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view zip(reinterpret_cast<const char*>(data), size);
  check_directory(zip);

  counting_reader reader{zip};
  const bool readable = read_zip_directory(zip.size(), std::cref(reader)).has_value();
  const auto [module_path, version] = module_of(zip);
  const auto verdict = check_module_zip(module_path, version, zip.size(), std::cref(reader));
  if (verdict) require(readable);
  if (!verdict) {
    const std::string& detail = verdict.error().detail;
    require(!detail.empty() && detail.find('\n') == std::string::npos);
  }

  const auto hash = zip_h1_hash(zip.size(), std::cref(reader));
  if (hash) {
    require(readable);
    require(hash->size() == 47 && hash->starts_with("h1:") && hash->back() == '=');
  }
  return 0;
}
