// A bundle's tar archive as `cache import` reads it: every member header (ustar, pax, GNU long
// names) through tar_reader, every member name through parse_member_name. Invariants: members
// start on a block boundary and lie inside the file; an error or a refusal reason is one line;
// an accepted name is the proxy's cache key for the same request without its leading '/'.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "bundle/bundle_layout.hpp"
#include "bundle/tar_format.hpp"

namespace {

using namespace gomodproxy::bundle;

void require(bool holds) {
  if (!holds) std::abort();
}

bool one_line(const std::string& text) { return text.find('\n') == std::string::npos; }

// The reader opens a path; one in-memory file, rewritten for each input, serves them all.
int input_file() {
  static const int fd = ::memfd_create("bundle-tar-fuzz", 0);
  require(fd >= 0);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const int fd = input_file();
  require(::ftruncate(fd, 0) == 0);
  require(::pwrite(fd, data, size, 0) == static_cast<ssize_t>(size));
  auto opened = tar_reader::open("/proc/self/fd/" + std::to_string(fd));
  require(opened.has_value());
  auto& tar = *opened;
  for (;;) {
    auto next = tar->next();
    if (!next) {
      require(!next.error().detail.empty() && one_line(next.error().detail));
      break;
    }
    auto& member = *next;
    if (!member) break;
    require(member->offset % 512 == 0);
    require(member->offset <= size && member->size <= size - member->offset);
    std::string content;
    const auto length = static_cast<std::size_t>(member->size < 4096 ? member->size : 4096);
    require(tar->read(member->offset, length, content) && content.size() == length);
    auto request = parse_member_name(member->name);
    if (request) {
      require(request->cache_key == "/" + member->name);
    } else {
      require(request.error().code == gomodproxy::errc::invalid_request);
      require(!request.error().detail.empty() && one_line(request.error().detail));
    }
  }
  return 0;
}
