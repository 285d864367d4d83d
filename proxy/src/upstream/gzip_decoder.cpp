#include "upstream/gzip_decoder.hpp"

#include <zlib.h>

#include <array>

namespace gomodproxy::upstream {

struct gzip_decoder::state {
  z_stream stream{};
  bool initialised = false;
  bool member_open = false;  // bytes of a member were consumed and its end was not seen yet
  bool any_member = false;   // at least one member ended
  bool failed = false;
  std::array<unsigned char, max_piece> out{};
};

gzip_decoder::gzip_decoder() : state_(std::make_unique<state>()) {
  // 16 + MAX_WBITS: expect a gzip wrapper (header and CRC-32 trailer), not raw zlib.
  state_->initialised = inflateInit2(&state_->stream, 16 + MAX_WBITS) == Z_OK;
  state_->failed = !state_->initialised;
}

gzip_decoder::~gzip_decoder() {
  if (state_->initialised) inflateEnd(&state_->stream);
}

// One inflate call into the state's output buffer, handing what it produced to `out`. `stalled`
// means zlib could make no progress (Z_BUF_ERROR with nothing produced); `produced` is set.
gzip_decoder::step gzip_decoder::inflate_once(const std::function<bool(std::string_view)>& out,
                                              std::size_t& produced) {
  auto& s = *state_;
  s.stream.next_out = s.out.data();
  s.stream.avail_out = static_cast<uInt>(s.out.size());
  int rc = inflate(&s.stream, Z_NO_FLUSH);
  produced = s.out.size() - s.stream.avail_out;
  if (rc == Z_BUF_ERROR && produced == 0) return step::stalled;
  if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
    s.failed = true;
    return step::corrupt;
  }
  if (produced > 0 &&
      !out(std::string_view(reinterpret_cast<const char*>(s.out.data()), produced))) {
    s.failed = true;
    return step::refused;
  }
  if (rc == Z_STREAM_END) {
    s.member_open = false;
    s.any_member = true;
  }
  return step::progressed;
}

gzip_decoder::status gzip_decoder::write(std::string_view compressed,
                                         const std::function<bool(std::string_view)>& out) {
  auto& s = *state_;
  if (s.failed) return status::corrupt;
  // zlib's next_in is not const-qualified in older headers; it never writes through it.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast)
  s.stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  s.stream.avail_in = static_cast<uInt>(compressed.size());
  std::size_t produced = 0;
  while (s.stream.avail_in > 0) {
    if (!s.member_open && s.any_member) {
      // Another member follows the previous one's trailer.
      if (inflateReset(&s.stream) != Z_OK) {
        s.failed = true;
        return status::corrupt;
      }
    }
    s.member_open = true;
    switch (inflate_once(out, produced)) {
      case step::progressed:
        break;
      case step::stalled:  // input left but no progress: the stream is broken
        s.failed = true;
        return status::corrupt;
      case step::corrupt:
        return status::corrupt;
      case step::refused:
        return status::refused;
    }
  }
  // Input is exhausted, but inflate may still hold decoded bytes that did not fit in `out`.
  while (s.member_open) {
    switch (inflate_once(out, produced)) {
      case step::progressed:
        break;
      case step::stalled:  // needs more input
        return status::ok;
      case step::corrupt:
        return status::corrupt;
      case step::refused:
        return status::refused;
    }
    if (produced == 0) break;
  }
  return status::ok;
}

bool gzip_decoder::complete() const noexcept {
  return !state_->failed && state_->any_member && !state_->member_open;
}

}  // namespace gomodproxy::upstream
