// Reads a zip's end-of-central-directory record (zip64 too) and its central directory through a
// random_reader in bounded pieces. Private to sumdb: zip_check is the only caller.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/failure.hpp"
#include "sumdb/zip_check.hpp"

namespace gomodproxy::sumdb {

struct zip_entry {
  std::string name;  ///< exactly as stored
  std::uint16_t flags = 0;
  std::uint16_t method = 0;
  std::uint32_t crc32 = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t uncompressed_size = 0;
  std::uint64_t local_header_offset = 0;
};

struct zip_directory {
  std::vector<zip_entry> entries;  ///< in central-directory order
  /// Where the central directory starts; every entry's header and data lie before it.
  std::uint64_t directory_offset = 0;
};

/// Largest central directory read: 64 MiB is some 400 000 entries, far beyond any real module,
/// and bounds the memory a hostile zip can make the checker spend on names.
inline constexpr std::uint64_t max_central_directory_bytes = std::uint64_t{64} << 20;

/// The entries of the zip of `size` bytes, or why it is not a readable zip. The failure's detail
/// is one ASCII line without a subject (e.g. "no end of central directory record"); its code is
/// errc::verification_failed for bytes that are not a zip the go command would read, or the
/// reader's own code when a read failed ("read failed: <its message>").
[[nodiscard]] outcome_of<zip_directory> read_zip_directory(std::uint64_t size,
                                                           const random_reader& read);

/// Offset of `entry`'s data, from its local header; a failure, coded as read_zip_directory's,
/// when that header is bad or the data would run into the central directory.
[[nodiscard]] outcome_of<std::uint64_t> entry_data_offset(const zip_directory& directory,
                                                          const zip_entry& entry,
                                                          const random_reader& read);

}  // namespace gomodproxy::sumdb
