// Verifies a module zip before it is cached or served: structure, entry names and module limits,
// read through random access so a 500 MiB zip is never held in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

namespace gomodproxy::sumdb {

/// Reads up to `length` bytes at `offset`; shorter only at the end.
using random_reader =
    std::function<boost::system::result<std::string>(std::uint64_t offset, std::size_t length)>;

struct zip_limits {
  std::uint64_t max_zip_bytes = 524288000;           ///< Default: 500 MiB
  std::uint64_t max_uncompressed_bytes = 524288000;  ///< sum of declared sizes. Default: 500 MiB
  std::uint64_t max_go_mod_bytes = 16777216;         ///< Default: 16 MiB
  std::uint64_t max_license_bytes = 16777216;        ///< Default: 16 MiB
};

/// nullopt when the zip of `size` bytes is a valid module zip for module_path@version (the
/// unescaped path and canonical version); otherwise a one-line reason. Checks: end-of-central-
/// directory (zip64 too), every entry name starts with "<module_path>@<version>/", the rest is a
/// clean, valid file path (CheckFilePath), no case-fold collisions or duplicates, no file that is
/// also a directory, go.mod only at the root and spelled exactly so, methods store/deflate only,
/// and the limits.
std::optional<std::string> check_module_zip(std::string_view module_path, std::string_view version,
                                            std::uint64_t size, const random_reader& read,
                                            const zip_limits& limits = {});

}  // namespace gomodproxy::sumdb
