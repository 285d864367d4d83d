// Verifies a module zip before it is cached or served: structure, entry names and module limits,
// read through random access so a 500 MiB zip is never held in memory.
#pragma once

#include <boost/system/result.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/failure.hpp"

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

/// Success when the zip of `size` bytes is a valid module zip for module_path@version (the
/// unescaped path and canonical version); otherwise a failure with a one-line detail: the
/// reader's error when a read failed, else errc::verification_failed (the limits are the go
/// command's, so a zip past them is one it would refuse too). Checks: end-of-central-
/// directory (zip64 too), every entry name starts with "<module_path>@<version>/", the rest is a
/// clean, valid file path (CheckFilePath), no case-fold collisions or duplicates, no file that is
/// also a directory, go.mod only at the root and spelled exactly so, methods store/deflate only,
/// and the limits.
[[nodiscard]] outcome_of<void> check_module_zip(std::string_view module_path,
                                                std::string_view version, std::uint64_t size,
                                                const random_reader& read,
                                                const zip_limits& limits = {});

/// The dirhash Hash1 of the zip of `size` bytes ("h1:" + base64), as the go command computes it
/// for go.sum: over every entry name as stored (prefix and directory entries included) and the
/// decompressed content. Entries are inflated in bounded pieces; each must have method store or
/// deflate, its declared uncompressed size and, when the central directory gives one, its CRC-32.
/// Errors: the reader's error when a read fails, else errc::verification_failed.
[[nodiscard]] boost::system::result<std::string> zip_h1_hash(std::uint64_t size,
                                                             const random_reader& read);

/// The go.sum hash of a module's zip (`zip`) or go.mod of `size` bytes read through `read`:
/// zip_h1_hash or go_mod_h1_hash, with their errors.
[[nodiscard]] boost::system::result<std::string> module_file_h1_hash(bool zip, std::uint64_t size,
                                                                     const random_reader& read);

/// The go.sum hash of a .mod file ("<path> <version>/go.mod h1:..."): Hash1 over the single name
/// "go.mod" with `go_mod_bytes` as content.
std::string go_mod_h1_hash(std::string_view go_mod_bytes);

}  // namespace gomodproxy::sumdb
