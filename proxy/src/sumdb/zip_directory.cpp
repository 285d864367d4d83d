#include "sumdb/zip_directory.hpp"

#include <algorithm>
#include <optional>
#include <string_view>

namespace gomodproxy::sumdb {
namespace {

constexpr std::uint32_t end_signature = 0x06054b50;
constexpr std::uint32_t zip64_locator_signature = 0x07064b50;
constexpr std::uint32_t zip64_end_signature = 0x06064b50;
constexpr std::uint32_t central_header_signature = 0x02014b50;
constexpr std::uint32_t local_header_signature = 0x04034b50;
constexpr std::size_t end_length = 22;
constexpr std::size_t zip64_locator_length = 20;
constexpr std::size_t zip64_end_length = 56;
constexpr std::size_t central_header_length = 46;
constexpr std::size_t local_header_length = 30;
constexpr std::size_t max_comment_length = 0xffff;
constexpr std::uint16_t zip64_extra_id = 0x0001;
constexpr std::size_t piece_bytes = std::size_t{64} * 1024;

std::uint16_t get16(std::string_view b, std::size_t at) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(b[at]) |
                                    static_cast<unsigned char>(b[at + 1]) << 8);
}

std::uint32_t get32(std::string_view b, std::size_t at) {
  return static_cast<std::uint32_t>(get16(b, at)) | static_cast<std::uint32_t>(get16(b, at + 2))
                                                        << 16;
}

std::uint64_t get64(std::string_view b, std::size_t at) {
  return static_cast<std::uint64_t>(get32(b, at)) | static_cast<std::uint64_t>(get32(b, at + 4))
                                                        << 32;
}

// A reader that returns fewer bytes than asked before the end of the file has truncated or lied
// about the size; both mean the zip cannot be trusted.
outcome_of<std::string> read_exact(const random_reader& read, std::uint64_t offset,
                                   std::size_t length) {
  auto bytes = read(offset, length);
  if (!bytes) return failure{bytes.error(), "read failed: " + bytes.error().message()};
  if (bytes->size() < length) return verification_failed("zip is shorter than its declared size");
  bytes->resize(length);
  return std::move(*bytes);
}

// Sequential reads over [begin, end) in pieces of piece_bytes, so a large central directory is
// never requested in one call.
class piece_reader {
 public:
  piece_reader(const random_reader& read, std::uint64_t begin, std::uint64_t end)
      : read_(read), next_(begin), end_(end) {}

  // The next `length` bytes; the view is valid until the next call.
  outcome_of<std::string_view> take(std::size_t length) {
    if (buffer_.size() - used_ < length) {
      buffer_.erase(0, used_);
      used_ = 0;
      const std::uint64_t missing = length - buffer_.size();
      if (missing > end_ - next_) return verification_failed("central directory is truncated");
      const auto want = static_cast<std::size_t>(
          std::min<std::uint64_t>(end_ - next_, std::max<std::uint64_t>(missing, piece_bytes)));
      auto piece = read_exact(read_, next_, want);
      if (!piece) return std::move(piece).error();
      buffer_ += *piece;
      next_ += want;
    }
    const std::string_view out = std::string_view(buffer_).substr(used_, length);
    used_ += length;
    return out;
  }

 private:
  const random_reader& read_;
  std::uint64_t next_;
  std::uint64_t end_;
  std::string buffer_;
  std::size_t used_ = 0;
};

struct directory_end {
  std::uint64_t entry_count = 0;
  std::uint64_t directory_size = 0;
  std::uint64_t directory_offset = 0;
  std::uint64_t record_offset = 0;  ///< where the (zip64) end record starts
};

outcome_of<directory_end> find_directory_end(std::uint64_t size, const random_reader& read) {
  if (size < end_length) return verification_failed("no end of central directory record");
  const auto tail_length =
      static_cast<std::size_t>(std::min<std::uint64_t>(size, end_length + max_comment_length));
  const std::uint64_t tail_offset = size - tail_length;
  auto tail_read = read_exact(read, tail_offset, tail_length);
  if (!tail_read) return std::move(tail_read).error();
  const std::string_view tail = *tail_read;

  // Search backwards like Go's archive/zip: the last signature whose comment fits in the file.
  std::optional<std::size_t> found;
  for (std::size_t i = tail_length - end_length + 1; i-- > 0;) {
    if (get32(tail, i) == end_signature && i + end_length + get16(tail, i + 20) <= tail_length) {
      found = i;
      break;
    }
  }
  if (!found)
    return verification_failed("no end of central directory record (truncated or not a zip)");

  directory_end end;
  end.entry_count = get16(tail, *found + 10);
  end.directory_size = get32(tail, *found + 12);
  end.directory_offset = get32(tail, *found + 16);
  end.record_offset = tail_offset + *found;

  const bool wants_zip64 = end.entry_count == 0xffff || end.directory_size == 0xffffffff ||
                           end.directory_offset == 0xffffffff;
  if (!wants_zip64 || end.record_offset < zip64_locator_length) return end;
  auto locator_read =
      read_exact(read, end.record_offset - zip64_locator_length, zip64_locator_length);
  if (!locator_read) return std::move(locator_read).error();
  const std::string_view locator = *locator_read;
  // Without a locator the 32-bit values stand, as in Go; the bounds checks then decide.
  if (get32(locator, 0) != zip64_locator_signature) return end;
  const std::uint64_t record_offset = get64(locator, 8);
  if (record_offset > end.record_offset - zip64_locator_length ||
      end.record_offset - zip64_locator_length - record_offset < zip64_end_length) {
    return verification_failed("zip64 end of central directory record is outside the file");
  }
  auto record_read = read_exact(read, record_offset, zip64_end_length);
  if (!record_read) return std::move(record_read).error();
  const std::string_view record = *record_read;
  if (get32(record, 0) != zip64_end_signature) {
    return verification_failed("zip64 end of central directory record has a bad signature");
  }
  end.entry_count = get64(record, 32);
  end.directory_size = get64(record, 40);
  end.directory_offset = get64(record, 48);
  end.record_offset = record_offset;
  return end;
}

// Replaces the 32-bit fields that are saturated with the values of the zip64 extra field.
outcome_of<void> apply_zip64_extra(std::string_view extra, zip_entry& entry) {
  const bool need_uncompressed = entry.uncompressed_size == 0xffffffff;
  const bool need_compressed = entry.compressed_size == 0xffffffff;
  const bool need_offset = entry.local_header_offset == 0xffffffff;
  if (!need_uncompressed && !need_compressed && !need_offset) return {};
  std::size_t at = 0;
  while (at + 4 <= extra.size()) {
    const std::uint16_t id = get16(extra, at);
    const std::size_t length = get16(extra, at + 2);
    at += 4;
    if (length > extra.size() - at) break;
    if (id == zip64_extra_id) {
      const std::string_view field = extra.substr(at, length);
      std::size_t used = 0;
      for (auto [needed, value] : {std::pair{need_uncompressed, &entry.uncompressed_size},
                                   std::pair{need_compressed, &entry.compressed_size},
                                   std::pair{need_offset, &entry.local_header_offset}}) {
        if (!needed) continue;
        if (field.size() - used < 8) {
          return verification_failed("entry has a short zip64 extra field");
        }
        *value = get64(field, used);
        used += 8;
      }
      return {};
    }
    at += length;
  }
  return verification_failed("entry needs a zip64 extra field and has none");
}

}  // namespace

outcome_of<zip_directory> read_zip_directory(std::uint64_t size, const random_reader& read) {
  auto found = find_directory_end(size, read);
  if (!found) return std::move(found).error();
  const directory_end& end = *found;

  if (end.directory_offset > end.record_offset ||
      end.directory_size > end.record_offset - end.directory_offset) {
    return verification_failed("central directory is outside the file");
  }
  if (end.directory_size > max_central_directory_bytes) {
    return verification_failed("central directory of " + std::to_string(end.directory_size) +
                               " bytes is larger than the limit of " +
                               std::to_string(max_central_directory_bytes) + " bytes");
  }
  if (end.entry_count > end.directory_size / central_header_length) {
    return verification_failed("central directory declares " + std::to_string(end.entry_count) +
                               " entries, more than its " + std::to_string(end.directory_size) +
                               " bytes can hold");
  }

  zip_directory directory;
  directory.directory_offset = end.directory_offset;
  // The count is only a claim until the entries are read; reserve no more than a typical module.
  directory.entries.reserve(
      static_cast<std::size_t>(std::min<std::uint64_t>(end.entry_count, 4096)));
  piece_reader pieces(read, end.directory_offset, end.directory_offset + end.directory_size);
  for (std::uint64_t i = 0; i < end.entry_count; ++i) {
    auto header_taken = pieces.take(central_header_length);
    if (!header_taken) return std::move(header_taken).error();
    const std::string_view header = *header_taken;
    if (get32(header, 0) != central_header_signature) {
      return verification_failed("central directory entry " + std::to_string(i) +
                                 " has a bad signature");
    }
    zip_entry entry;
    entry.flags = get16(header, 8);
    entry.method = get16(header, 10);
    entry.crc32 = get32(header, 16);
    entry.compressed_size = get32(header, 20);
    entry.uncompressed_size = get32(header, 24);
    const std::size_t name_length = get16(header, 28);
    const std::size_t extra_length = get16(header, 30);
    const std::size_t comment_length = get16(header, 32);
    entry.local_header_offset = get32(header, 42);

    auto name_taken = pieces.take(name_length);
    if (!name_taken) return std::move(name_taken).error();
    entry.name = std::string(*name_taken);
    auto extra_taken = pieces.take(extra_length);
    if (!extra_taken) return std::move(extra_taken).error();
    if (auto applied = apply_zip64_extra(*extra_taken, entry); !applied) {
      auto why = std::move(applied).error();
      why.detail = "central directory entry " + std::to_string(i) + ": " + why.detail;
      return why;
    }
    auto comment_taken = pieces.take(comment_length);
    if (!comment_taken) return std::move(comment_taken).error();

    if (entry.local_header_offset > end.directory_offset ||
        end.directory_offset - entry.local_header_offset < local_header_length ||
        entry.compressed_size >
            end.directory_offset - entry.local_header_offset - local_header_length) {
      return verification_failed("central directory entry " + std::to_string(i) +
                                 " points outside the file");
    }
    directory.entries.push_back(std::move(entry));
  }
  return directory;
}

outcome_of<std::uint64_t> entry_data_offset(const zip_directory& directory, const zip_entry& entry,
                                            const random_reader& read) {
  auto header_read = read_exact(read, entry.local_header_offset, local_header_length);
  if (!header_read) return std::move(header_read).error();
  const std::string_view header = *header_read;
  if (get32(header, 0) != local_header_signature) {
    return verification_failed("local file header has a bad signature");
  }
  const std::uint64_t data =
      entry.local_header_offset + local_header_length + get16(header, 26) + get16(header, 28);
  if (data > directory.directory_offset ||
      entry.compressed_size > directory.directory_offset - data) {
    return verification_failed("entry data runs into the central directory");
  }
  return data;
}

}  // namespace gomodproxy::sumdb
