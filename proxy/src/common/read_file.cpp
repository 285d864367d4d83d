#include "common/read_file.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace gomodproxy {
namespace {

struct file_closer {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

failure errno_failure(int error) {
  // A stream can fail without setting errno; the reason must still say something.
  if (error == 0) error = EIO;
  return system_failure(error, std::strerror(error));
}

}  // namespace

outcome_of<std::string> read_file(const std::string& path, std::size_t max_bytes) {
  errno = 0;
  const std::unique_ptr<std::FILE, file_closer> file(std::fopen(path.c_str(), "rb"));
  if (!file) return errno_failure(errno);
  std::string text;
  std::array<char, 65536> buffer{};
  for (;;) {
    const auto n = std::fread(buffer.data(), 1, buffer.size(), file.get());
    text.append(buffer.data(), n);
    if (text.size() > max_bytes) {
      return failure{errc::too_large, "larger than " + std::to_string(max_bytes) + " bytes"};
    }
    if (n < buffer.size()) break;
  }
  if (std::ferror(file.get()) != 0) return errno_failure(errno);
  return text;
}

}  // namespace gomodproxy
