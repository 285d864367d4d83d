#include "sumdb/zip_check.hpp"

#include <locale.h>  // NOLINT(modernize-deprecated-headers): POSIX newlocale, not in <clocale>
#include <wctype.h>  // NOLINT(modernize-deprecated-headers): POSIX towlower_l, not in <cwctype>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/errc.hpp"
#include "protocol/escape.hpp"
#include "protocol/module_path.hpp"
#include "sumdb/base64.hpp"
#include "sumdb/sha256.hpp"
#include "sumdb/zip_directory.hpp"

namespace gomodproxy::sumdb {
namespace {

constexpr std::uint16_t method_store = 0;
constexpr std::uint16_t method_deflate = 8;
constexpr std::size_t piece_bytes = std::size_t{64} * 1024;

// Entry names come from untrusted bytes; reasons must stay one printable ASCII line.
std::string printable(std::string_view text) {
  return protocol::quote(text, {.quotes = false, .named_controls = false, .max_bytes = 300});
}

std::string with_newlines_replaced(std::string text) {
  std::replace_if(
      text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return text;
}

// path.Clean(name) == name for a non-empty relative name: no leading or doubled '/', no trailing
// '/', and no "." or ".." element.
bool is_clean(std::string_view name) {
  if (name.empty()) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = name.find('/', start);
    const std::string_view element = name.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (element.empty() || element == "." || element == "..") return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool equal_fold_ascii(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
           return lower(x) == lower(y);
         });
}

// The C.UTF-8 locale gives Unicode case mappings without touching the global locale. Where it is
// missing, folding degrades to ASCII, which still catches every collision of ASCII names.
locale_t utf8_ctype() {
  static const locale_t locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t{});
  return locale;
}

void append_utf8(std::string& out, char32_t r) {
  if (r < 0x80) {
    out += static_cast<char>(r);
  } else if (r < 0x800) {
    out += static_cast<char>(0xc0 | (r >> 6));
    out += static_cast<char>(0x80 | (r & 0x3f));
  } else if (r < 0x10000) {
    out += static_cast<char>(0xe0 | (r >> 12));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (r & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (r >> 18));
    out += static_cast<char>(0x80 | ((r >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (r & 0x3f));
  }
}

// A key with fold(a) == fold(b) when strings.EqualFold(a, b) would say so: lower(upper(r)) maps
// every rune of a simple-fold orbit (k, K, KELVIN SIGN) to one rune. Names reaching here passed
// CheckFilePath, so they are valid UTF-8; a stray byte is kept as it is.
std::string fold(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  const locale_t locale = utf8_ctype();
  for (std::size_t i = 0; i < name.size();) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x80) {
      out += c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : static_cast<char>(c);
      ++i;
      continue;
    }
    const std::size_t length = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    if (length == 1 || i + length > name.size() || locale == locale_t{}) {
      out += name.substr(i, length == 1 ? 1 : std::min(length, name.size() - i));
      i += length == 1 ? 1 : std::min(length, name.size() - i);
      continue;
    }
    char32_t r = c & (0xff >> (length + 1));
    for (std::size_t k = 1; k < length; ++k) {
      r = (r << 6) | (static_cast<unsigned char>(name[i + k]) & 0x3f);
    }
    const auto folded = towlower_l(towupper_l(static_cast<wint_t>(r), locale), locale);
    append_utf8(out, static_cast<char32_t>(folded));
    i += length;
  }
  return out;
}

// x/mod/zip's collisionChecker: a path, and every parent directory of it, is recorded under its
// case-folded form, so "a/x" and "A/y" collide through their parents.
class collision_checker {
 public:
  // Success when `path` (a directory when `is_dir`) collides with no path recorded before; else
  // verification_failed with the collision as the detail.
  outcome_of<void> check(std::string_view path, bool is_dir) {
    while (true) {
      auto [it, inserted] = seen_.try_emplace(fold(path), seen_path{std::string(path), is_dir});
      if (!inserted) {
        const seen_path& other = it->second;
        if (other.path != path) {
          return verification_failed("case-insensitive file name collision: " +
                                     printable(other.path) + " and " + printable(path));
        }
        if (other.is_dir != is_dir) {
          return verification_failed("both a file and a directory named " + printable(path));
        }
        if (!is_dir) return verification_failed("multiple entries for file " + printable(path));
        // This directory was recorded before, and its parents with it.
        return {};
      }
      const std::size_t slash = path.rfind('/');
      if (slash == std::string_view::npos) return {};
      path = path.substr(0, slash);
      is_dir = true;
    }
  }

 private:
  struct seen_path {
    std::string path;
    bool is_dir;
  };
  std::unordered_map<std::string, seen_path> seen_;
};

std::string size_limit_reason(std::string_view what, std::uint64_t size, std::uint64_t limit) {
  return std::string(what) + " of " + std::to_string(size) + " bytes, more than the limit of " +
         std::to_string(limit) + " bytes";
}

std::string hex(const sha256_digest& digest) {
  constexpr std::string_view digits = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

// Hash1's final step: "h1:" + base64(sha256(summary lines)).
std::string h1_of_summary(sha256& summary) {
  const sha256_digest digest = summary.finish();
  return "h1:" + encode_base64({reinterpret_cast<const char*>(digest.data()), digest.size()});
}

void add_summary_line(sha256& summary, const sha256_digest& content, std::string_view name) {
  summary.update(hex(content) + "  " + std::string(name) + "\n");
}

struct inflater {
  z_stream stream{};
  bool ready = false;
  inflater() : ready(inflateInit2(&stream, -MAX_WBITS) == Z_OK) {}
  ~inflater() {
    if (ready) inflateEnd(&stream);
  }
  inflater(const inflater&) = delete;
  inflater& operator=(const inflater&) = delete;
};

boost::system::error_code failed() { return make_error_code(errc::verification_failed); }

// Streams one entry's content into a SHA-256, checking its declared size and CRC-32 as Go's
// archive/zip does when the go command reads it.
boost::system::result<sha256_digest> hash_entry(const zip_directory& directory,
                                                const zip_entry& entry, const random_reader& read) {
  if (entry.method != method_store && entry.method != method_deflate) return failed();
  auto data_offset = entry_data_offset(directory, entry, read);
  if (!data_offset) return data_offset.error().code;
  const std::uint64_t data = *data_offset;
  if (entry.method == method_store && entry.compressed_size != entry.uncompressed_size) {
    return failed();
  }

  sha256 content;
  uLong crc = crc32(0L, Z_NULL, 0);
  std::uint64_t produced = 0;
  auto consume = [&](const unsigned char* bytes, std::size_t length) {
    content.update(bytes, length);
    crc = crc32(crc, bytes, static_cast<uInt>(length));
    produced += length;
  };

  inflater inflate_state;
  if (entry.method == method_deflate && !inflate_state.ready) return failed();
  std::array<unsigned char, piece_bytes> output{};
  std::string piece;
  std::uint64_t offset = data;
  std::uint64_t remaining = entry.compressed_size;
  bool finished = entry.method == method_store && remaining == 0;
  while (!finished) {
    if (entry.method == method_store || inflate_state.stream.avail_in == 0) {
      if (remaining == 0) return failed();  // deflate stream ended early
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, piece_bytes));
      auto bytes = read(offset, want);
      if (!bytes) return bytes.error();
      if (bytes->size() < want) return failed();
      piece = std::move(*bytes);
      piece.resize(want);
      offset += want;
      remaining -= want;
      if (entry.method == method_store) {
        consume(reinterpret_cast<const unsigned char*>(piece.data()), piece.size());
        finished = remaining == 0;
        continue;
      }
      inflate_state.stream.next_in = reinterpret_cast<Bytef*>(piece.data());
      inflate_state.stream.avail_in = static_cast<uInt>(piece.size());
    }
    inflate_state.stream.next_out = output.data();
    inflate_state.stream.avail_out = static_cast<uInt>(output.size());
    const int status = inflate(&inflate_state.stream, Z_NO_FLUSH);
    if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) return failed();
    consume(output.data(), output.size() - inflate_state.stream.avail_out);
    // Stop a deflate bomb as soon as it passes its declared size.
    if (produced > entry.uncompressed_size) return failed();
    finished = status == Z_STREAM_END;
  }
  if (produced != entry.uncompressed_size) return failed();
  if (entry.crc32 != 0 && crc != entry.crc32) return failed();
  return content.finish();
}

}  // namespace

outcome_of<void> check_module_zip(std::string_view module_path, std::string_view version,
                                  std::uint64_t size, const random_reader& read,
                                  const zip_limits& limits) {
  const std::string subject = "zip for " + printable(module_path) + "@" + printable(version);
  if (size > limits.max_zip_bytes) {
    return failure{failed(), subject + " is too large: " +
                                 size_limit_reason("a zip", size, limits.max_zip_bytes)};
  }
  auto directory_read = read_zip_directory(size, read);
  if (!directory_read) {
    // A read that failed keeps the reader's code (the cache, the network), not the zip's.
    auto why = std::move(directory_read).error();
    why.detail = subject + " is not a valid zip: " + why.detail;
    return why;
  }
  const zip_directory& directory = *directory_read;

  const std::string prefix = std::string(module_path) + "@" + std::string(version) + "/";
  collision_checker collisions;
  std::uint64_t total_size = 0;
  for (const zip_entry& entry : directory.entries) {
    if (entry.name.compare(0, prefix.size(), prefix) != 0) {
      return failure{failed(), subject + " has unexpected file " + printable(entry.name)};
    }
    std::string_view name = std::string_view(entry.name).substr(prefix.size());
    // Every entry is opened when the go command hashes the zip, directories and the bare prefix
    // included, so an unreadable method anywhere makes the zip unusable.
    if (entry.method != method_store && entry.method != method_deflate) {
      return failure{failed(), subject + " has file " + printable(entry.name) +
                                   " with unsupported compression method " +
                                   std::to_string(entry.method) + " (only store and deflate)"};
    }
    if (name.empty()) continue;
    const bool is_dir = name.back() == '/';
    if (is_dir) name.remove_suffix(1);
    if (!is_clean(name)) {
      return failure{failed(),
                     subject + " has file " + printable(entry.name) + " whose path is not clean"};
    }
    if (auto checked = protocol::check_file_path(name); !checked) {
      return failure{failed(), subject + " has invalid file " + printable(entry.name) + ": " +
                                   printable(with_newlines_replaced(checked.error().detail))};
    }
    if (auto unique = collisions.check(name, is_dir); !unique) {
      auto why = std::move(unique).error();
      why.detail = subject + " has " + why.detail;
      return why;
    }
    if (is_dir) continue;

    const std::size_t slash = name.rfind('/');
    const std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
    if (equal_fold_ascii(base, "go.mod")) {
      if (base != name) {
        return failure{
            failed(), subject + " has go.mod file " + printable(name) + " outside the module root"};
      }
      if (name != "go.mod") {
        return failure{failed(), subject + " has " + printable(name) +
                                     " at the module root; it must be spelled go.mod"};
      }
    }
    if (entry.uncompressed_size > limits.max_uncompressed_bytes - total_size) {
      return failure{failed(), subject + " is too large: its files total more than the limit of " +
                                   std::to_string(limits.max_uncompressed_bytes) +
                                   " uncompressed bytes"};
    }
    total_size += entry.uncompressed_size;
    if (name == "go.mod" && entry.uncompressed_size > limits.max_go_mod_bytes) {
      return failure{failed(), subject + " has " +
                                   size_limit_reason("a go.mod", entry.uncompressed_size,
                                                     limits.max_go_mod_bytes)};
    }
    if (name == "LICENSE" && entry.uncompressed_size > limits.max_license_bytes) {
      return failure{failed(), subject + " has " +
                                   size_limit_reason("a LICENSE", entry.uncompressed_size,
                                                     limits.max_license_bytes)};
    }
  }
  return {};
}

boost::system::result<std::string> zip_h1_hash(std::uint64_t size, const random_reader& read) {
  auto directory_read = read_zip_directory(size, read);
  if (!directory_read) return directory_read.error().code;
  const zip_directory& directory = *directory_read;
  const auto& entries = directory.entries;

  std::vector<std::size_t> order(entries.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return entries[a].name < entries[b].name; });

  sha256 summary;
  for (std::size_t group = 0; group < order.size();) {
    std::size_t group_end = group + 1;
    while (group_end < order.size() &&
           entries[order[group_end]].name == entries[order[group]].name) {
      ++group_end;
    }
    // Go's HashZip opens files by name, so a repeated name hashes the content of its last entry.
    const zip_entry& entry = entries[order[group_end - 1]];
    if (entry.name.find('\n') != std::string::npos) return failed();
    auto content = hash_entry(directory, entry, read);
    if (!content) return content.error();
    for (std::size_t i = group; i < group_end; ++i) add_summary_line(summary, *content, entry.name);
    group = group_end;
  }
  return h1_of_summary(summary);
}

boost::system::result<std::string> module_file_h1_hash(bool zip, std::uint64_t size,
                                                       const random_reader& read) {
  if (zip) return zip_h1_hash(size, read);
  auto go_mod = read(0, static_cast<std::size_t>(size));
  if (!go_mod) return go_mod.error();
  return go_mod_h1_hash(*go_mod);
}

std::string go_mod_h1_hash(std::string_view go_mod_bytes) {
  sha256 summary;
  add_summary_line(summary, sha256_of(go_mod_bytes), "go.mod");
  return h1_of_summary(summary);
}

}  // namespace gomodproxy::sumdb
