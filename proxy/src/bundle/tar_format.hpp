// The tar archives bundles travel in: POSIX ustar members, with a pax extended header before a
// member whose name does not fit ustar's 100-byte name field. Written and read in a streaming
// way: a member's content is never held whole, only read back by offset.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/failure.hpp"

namespace gomodproxy::bundle {

/// Writes a tar archive to a file the caller opened for writing (binary) and closes. Each
/// member is begin_file(), write() until its size is reached, end_file(); finish() ends the
/// archive. Every call fails once a write fails (the errno, generic category) or the calls are
/// out of order (invalid_argument); the archive is then unusable. Not thread-safe.
class tar_writer final {
 public:
  explicit tar_writer(std::FILE* out) : out_(out) {}

  /// Starts a regular file (mode 0644) of `size` bytes named `name` (relative, '/'-separated)
  /// with modification time `mtime` (seconds since the epoch).
  [[nodiscard]] outcome_of<void> begin_file(std::string_view name, std::uint64_t size,
                                            std::int64_t mtime);
  /// Appends content to the member begun last; never more than its declared size in all.
  [[nodiscard]] outcome_of<void> write(std::string_view bytes);
  /// Pads the member to a whole block; the bytes written must equal the declared size.
  [[nodiscard]] outcome_of<void> end_file();
  /// A whole member at once.
  [[nodiscard]] outcome_of<void> add_file(std::string_view name, std::string_view content,
                                          std::int64_t mtime);
  /// The end-of-archive marker (two zero blocks) and a flush.
  [[nodiscard]] outcome_of<void> finish();

 private:
  [[nodiscard]] outcome_of<void> put(std::string_view bytes);
  [[nodiscard]] outcome_of<void> header(std::string_view name, char type, std::uint64_t size,
                                        std::int64_t mtime);

  std::FILE* out_;
  bool in_member_ = false;
  std::uint64_t declared_ = 0;
  std::uint64_t written_ = 0;
};

/// One member as the archive describes it; its content is `size` bytes at `offset` in the file.
struct tar_member {
  std::string name;  ///< after pax "path" or GNU long names; as stored, nothing normalised
  char type = '0';   ///< the typeflag: '0' regular file, '5' directory, others as stored
  std::uint64_t size = 0;
  std::uint64_t offset = 0;
};

/// Reads a tar archive (ustar, pax and GNU long-name headers) member by member from a file.
/// Not thread-safe.
class tar_reader final {
 public:
  /// The archive at `path`; the errno when it cannot be opened, invalid_request when it is not
  /// a regular file.
  static outcome_of<std::unique_ptr<tar_reader>> open(const std::string& path);
  ~tar_reader();
  tar_reader(const tar_reader&) = delete;
  tar_reader& operator=(const tar_reader&) = delete;

  /// The next member, or nullopt at the end-of-archive marker. invalid_request when the archive
  /// is damaged: a bad header checksum, a header that is not ustar, a bad pax record, a member
  /// or header cut short by the end of the file, or no end-of-archive marker; too_large for an
  /// extended header over 1 MiB; the errno when a read fails.
  [[nodiscard]] outcome_of<std::optional<tar_member>> next();

  /// Sets `out` to up to `length` bytes of the file at `offset`; shorter only at its end. The
  /// errno when the read fails.
  [[nodiscard]] outcome_of<void> read(std::uint64_t offset, std::size_t length, std::string& out);

  std::uint64_t file_size() const { return file_size_; }

 private:
  tar_reader(int fd, std::uint64_t file_size) : fd_(fd), file_size_(file_size) {}
  [[nodiscard]] outcome_of<void> read_exact(std::uint64_t offset, std::size_t length,
                                            std::string& out);

  int fd_;
  std::uint64_t file_size_;
  std::uint64_t position_ = 0;
};

}  // namespace gomodproxy::bundle
