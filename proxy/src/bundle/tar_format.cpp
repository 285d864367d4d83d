#include "bundle/tar_format.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace gomodproxy::bundle {
namespace {

constexpr std::size_t block = 512;
// A pax header larger than this is no header a bundle writer produces; refusing it bounds
// what a hostile archive makes us hold.
constexpr std::uint64_t max_extended_header = 1 << 20;

// Field offsets and widths of a ustar header block.
constexpr std::size_t name_at = 0, name_len = 100;
constexpr std::size_t mode_at = 100, uid_at = 108, gid_at = 116;
constexpr std::size_t size_at = 124, size_len = 12;
constexpr std::size_t mtime_at = 136, mtime_len = 12;
constexpr std::size_t checksum_at = 148, checksum_len = 8;
constexpr std::size_t type_at = 156;
constexpr std::size_t magic_at = 257;
constexpr std::size_t uname_at = 265, gname_at = 297;
constexpr std::size_t prefix_at = 345, prefix_len = 155;

std::uint64_t padding(std::uint64_t size) { return (block - size % block) % block; }

void put_octal(std::array<char, block>& header, std::size_t at, std::size_t width,
               std::uint64_t value) {
  // width - 1 digits and a NUL, as POSIX asks.
  for (std::size_t i = width - 1; i-- > 0;) {
    header[at + i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  header[at + width - 1] = '\0';
}

unsigned header_checksum(const char* header) {
  unsigned sum = 0;
  for (std::size_t i = 0; i < block; ++i) {
    const bool in_field = i >= checksum_at && i < checksum_at + checksum_len;
    sum += in_field ? ' ' : static_cast<unsigned char>(header[i]);
  }
  return sum;
}

std::string_view field(const char* header, std::size_t at, std::size_t width) {
  std::string_view text(header + at, width);
  return text.substr(0, text.find('\0'));
}

// An octal field (NUL- or space-terminated, maybe space-padded in front), or GNU's base-256
// form for sizes that do not fit.
std::optional<std::uint64_t> numeric_field(const char* header, std::size_t at, std::size_t width) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(header + at);
  if (bytes[0] & 0x80) {
    std::uint64_t value = bytes[0] & 0x7f;
    for (std::size_t i = 1; i < width; ++i) {
      if (value >> 55) return std::nullopt;
      value = (value << 8) | bytes[i];
    }
    return value;
  }
  std::string_view text(header + at, width);
  const auto begin = text.find_first_not_of(' ');
  if (begin == std::string_view::npos) return 0;
  text = text.substr(begin);
  text = text.substr(0, text.find_first_of(std::string_view(" \0", 2)));
  if (text.empty()) return 0;
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, 8);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// "<length> <key>=<value>\n" records; calls `visit` with each key and value.
template <class Visit>
outcome_of<void> parse_pax(std::string_view records, Visit visit) {
  while (!records.empty()) {
    const auto space = records.find(' ');
    if (space == std::string_view::npos) {
      return invalid_request("malformed pax extended header");
    }
    std::size_t length = 0;
    auto [end, error] = std::from_chars(records.data(), records.data() + space, length);
    if (error != std::errc() || end != records.data() + space || length <= space + 1 ||
        length > records.size() || records[length - 1] != '\n') {
      return invalid_request("malformed pax extended header");
    }
    const auto record = records.substr(space + 1, length - space - 2);
    const auto equals = record.find('=');
    if (equals == std::string_view::npos) {
      return invalid_request("malformed pax extended header record");
    }
    visit(record.substr(0, equals), record.substr(equals + 1));
    records.remove_prefix(length);
  }
  return {};
}

// A write or read that failed with the errno now set, as "<what> failed: <strerror>".
failure errno_failure(const char* what) {
  const int error = errno;
  return system_failure(error, std::string(what) + " failed: " + std::strerror(error));
}

}  // namespace

outcome_of<void> tar_writer::put(std::string_view bytes) {
  if (bytes.empty()) return {};
  if (std::fwrite(bytes.data(), 1, bytes.size(), out_) != bytes.size()) {
    return errno_failure("write");
  }
  return {};
}

outcome_of<void> tar_writer::header(std::string_view name, char type, std::uint64_t size,
                                    std::int64_t mtime) {
  std::array<char, block> header{};
  std::copy_n(name.data(), std::min(name.size(), name_len), header.data() + name_at);
  put_octal(header, mode_at, 8, 0644);
  put_octal(header, uid_at, 8, 0);
  put_octal(header, gid_at, 8, 0);
  put_octal(header, size_at, size_len, size);
  put_octal(header, mtime_at, mtime_len,
            static_cast<std::uint64_t>(std::max<std::int64_t>(0, mtime)));
  header[type_at] = type;
  std::memcpy(header.data() + magic_at,
              "ustar\0"
              "00",
              8);
  std::memcpy(header.data() + uname_at, "root", 4);
  std::memcpy(header.data() + gname_at, "root", 4);
  const unsigned sum = header_checksum(header.data());
  put_octal(header, checksum_at, 7, sum);
  header[checksum_at + 7] = ' ';
  return put(std::string_view(header.data(), block));
}

outcome_of<void> tar_writer::begin_file(std::string_view name, std::uint64_t size,
                                        std::int64_t mtime) {
  if (in_member_) {
    return failure{boost::system::errc::make_error_code(boost::system::errc::invalid_argument),
                   "a member was begun before the last one ended"};
  }
  // Octal in 11 digits holds sizes below 8 GiB; larger ones go in the pax header too.
  const bool fits_ustar = name.size() <= name_len && size < (std::uint64_t{1} << 33);
  if (!fits_ustar) {
    std::string records;
    auto add = [&records](std::string_view key, std::string_view value) {
      // The length counts its own digits: settle it by trying the digit count it would have.
      const std::size_t rest = 1 + key.size() + 1 + value.size() + 1;
      std::size_t length = rest + 1;
      while (std::to_string(length).size() + rest != length) length += 1;
      records += std::to_string(length) + " " + std::string(key) + "=" + std::string(value) + "\n";
    };
    if (name.size() > name_len) add("path", name);
    if (size >= (std::uint64_t{1} << 33)) add("size", std::to_string(size));
    const auto slash = name.rfind('/');
    const std::string pax_name =
        "PaxHeaders/" + std::string(name.substr(slash == std::string_view::npos ? 0 : slash + 1));
    if (auto written = header(pax_name, 'x', records.size(), mtime); !written) return written;
    if (auto written = put(records); !written) return written;
    if (auto written = put(std::string(padding(records.size()), '\0')); !written) return written;
  }
  if (auto written = header(name, '0', size < (std::uint64_t{1} << 33) ? size : 0, mtime);
      !written) {
    return written;
  }
  in_member_ = true;
  declared_ = size;
  written_ = 0;
  return {};
}

outcome_of<void> tar_writer::write(std::string_view bytes) {
  if (!in_member_ || written_ + bytes.size() > declared_) {
    return failure{boost::system::errc::make_error_code(boost::system::errc::invalid_argument),
                   "more content than the member's declared size"};
  }
  written_ += bytes.size();
  return put(bytes);
}

outcome_of<void> tar_writer::end_file() {
  if (!in_member_ || written_ != declared_) {
    return failure{boost::system::errc::make_error_code(boost::system::errc::invalid_argument),
                   "a member ended short of its declared size"};
  }
  in_member_ = false;
  return put(std::string(padding(declared_), '\0'));
}

outcome_of<void> tar_writer::add_file(std::string_view name, std::string_view content,
                                      std::int64_t mtime) {
  if (auto begun = begin_file(name, content.size(), mtime); !begun) return begun;
  if (auto written = write(content); !written) return written;
  return end_file();
}

outcome_of<void> tar_writer::finish() {
  if (in_member_) {
    return failure{boost::system::errc::make_error_code(boost::system::errc::invalid_argument),
                   "the archive ended inside a member"};
  }
  if (auto written = put(std::string(2 * block, '\0')); !written) return written;
  if (std::fflush(out_) != 0) return errno_failure("write");
  return {};
}

outcome_of<std::unique_ptr<tar_reader>> tar_reader::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    return system_failure(error, "cannot open " + path + ": " + std::strerror(error));
  }
  struct stat status {};
  if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
    ::close(fd);
    return invalid_request(path + " is not a regular file");
  }
  return std::unique_ptr<tar_reader>(
      new tar_reader(fd, static_cast<std::uint64_t>(status.st_size)));
}

tar_reader::~tar_reader() { ::close(fd_); }

outcome_of<void> tar_reader::read(std::uint64_t offset, std::size_t length, std::string& out) {
  out.resize(length);
  std::size_t got = 0;
  while (got < length) {
    const auto n = ::pread(fd_, out.data() + got, length - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_failure("read");
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return {};
}

outcome_of<void> tar_reader::read_exact(std::uint64_t offset, std::size_t length,
                                        std::string& out) {
  if (auto got = read(offset, length, out); !got) return got;
  if (out.size() != length) {
    return invalid_request("truncated: the archive ends inside a header or member");
  }
  return {};
}

outcome_of<std::optional<tar_member>> tar_reader::next() {
  std::optional<std::string> long_name;
  std::optional<std::uint64_t> pax_size;
  std::string head;
  // Extended headers come before the member they describe; loop until that member.
  for (;;) {
    if (position_ + block > file_size_) {
      return invalid_request(position_ == file_size_
                                 ? "truncated: no end-of-archive marker"
                                 : "truncated: the archive ends inside a header");
    }
    if (auto got = read_exact(position_, block, head); !got) return got.error();
    if (std::all_of(head.begin(), head.end(), [](char c) { return c == '\0'; })) {
      if (long_name || pax_size) {
        return invalid_request("truncated: an extended header describes no member");
      }
      return std::optional<tar_member>();
    }
    const char* raw = head.data();
    const auto stored_sum = numeric_field(raw, checksum_at, checksum_len);
    if (!stored_sum || *stored_sum != header_checksum(raw)) {
      return invalid_request("bad header checksum at offset " + std::to_string(position_) +
                             " (not a tar archive?)");
    }
    const std::string_view magic(raw + magic_at, 6);
    const bool posix = magic == std::string_view("ustar\0", 6);
    if (!posix && magic != "ustar ") {
      return invalid_request("header at offset " + std::to_string(position_) + " is not ustar");
    }
    const auto size = numeric_field(raw, size_at, size_len);
    if (!size) {
      return invalid_request("bad size field at offset " + std::to_string(position_));
    }
    const char type = raw[type_at];
    const std::uint64_t data_at = position_ + block;
    const std::uint64_t member_size = (type == '0' || type == '\0') && pax_size ? *pax_size : *size;
    if (member_size > file_size_ - data_at) {
      return invalid_request("truncated: a member's content runs past the end of the archive");
    }
    position_ = data_at + member_size + padding(member_size);
    if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
      if (member_size > max_extended_header) {
        return failure{errc::too_large, "an extended header of " + std::to_string(member_size) +
                                            " bytes is too large"};
      }
      std::string content;
      if (auto got = read_exact(data_at, static_cast<std::size_t>(member_size), content); !got) {
        return got.error();
      }
      if (type == 'L') {
        long_name = content.substr(0, content.find('\0'));
      } else if (type == 'x') {
        bool size_ok = true;
        const auto parsed = parse_pax(content, [&](std::string_view key, std::string_view value) {
          if (key == "path") long_name = std::string(value);
          if (key == "size") {
            std::uint64_t parsed_size = 0;
            auto [end, error] =
                std::from_chars(value.data(), value.data() + value.size(), parsed_size);
            size_ok = error == std::errc() && end == value.data() + value.size();
            pax_size = parsed_size;
          }
        });
        if (!parsed) return parsed.error();
        if (!size_ok) return invalid_request("malformed pax size record");
      }
      // 'g' (global) and 'K' (long link name) carry nothing a bundle member needs.
      continue;
    }
    tar_member found;
    if (long_name) {
      found.name = std::move(*long_name);
    } else {
      const auto prefix = posix ? field(raw, prefix_at, prefix_len) : std::string_view{};
      const auto name = field(raw, name_at, name_len);
      found.name =
          prefix.empty() ? std::string(name) : std::string(prefix) + "/" + std::string(name);
    }
    found.type = type == '\0' ? '0' : type;
    found.size = member_size;
    found.offset = data_at;
    return std::optional<tar_member>(std::move(found));
  }
}

}  // namespace gomodproxy::bundle
