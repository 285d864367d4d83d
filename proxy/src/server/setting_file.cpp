#include "server/setting_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace gomodproxy::server {
namespace {

failure errno_refusal(int error) { return system_failure(error, std::strerror(error)); }

}  // namespace

outcome_of<std::string> read_setting_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_refusal(errno);
  struct closer {
    int fd;
    explicit closer(int f) : fd(f) {}
    closer(const closer&) = delete;
    closer& operator=(const closer&) = delete;
    ~closer() { ::close(fd); }
  } closed{fd};
  struct stat info {};
  if (::fstat(fd, &info) != 0) return errno_refusal(errno);
  if (S_ISDIR(info.st_mode)) return system_failure(EISDIR, "it is a directory");
  const failure too_large{
      errc::too_large,
      "it is larger than " + std::to_string(max_setting_file_bytes >> 20) + " MiB"};
  if (S_ISREG(info.st_mode) && static_cast<std::uint64_t>(info.st_size) > max_setting_file_bytes) {
    return too_large;
  }
  const bool regular = S_ISREG(info.st_mode);
  std::string content;
  // One byte more than expected shows a file that grew while it was read (a certificate being
  // rewritten) or, for a pipe or a device that has no size to look at first, one over the limit.
  content.resize(regular ? static_cast<std::size_t>(info.st_size) + 1 : max_setting_file_bytes + 1);
  std::size_t filled = 0;
  while (filled < content.size()) {
    const auto got = ::read(fd, content.data() + filled, content.size() - filled);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return errno_refusal(errno);
    if (got == 0) break;
    filled += static_cast<std::size_t>(got);
  }
  if (regular && filled == content.size()) {
    return system_failure(EAGAIN, "it changed while it was read");
  }
  if (filled > max_setting_file_bytes) return too_large;
  content.resize(filled);
  return content;
}

std::string quoted_path(std::string_view path) {
  std::string out = "\"";
  for (const char c : path) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f || c == '"' || c == '\\') {
      constexpr std::string_view hex = "0123456789abcdef";
      out += "\\x";
      out += hex[byte >> 4];
      out += hex[byte & 0xf];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace gomodproxy::server
