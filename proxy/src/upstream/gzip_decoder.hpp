// Streaming gzip decoding of upstream bodies (Content-Encoding: gzip) with zlib, in bounded
// memory: compressed bytes go in piece by piece, decoded bytes come out in pieces of at most
// gzip_decoder::max_piece.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>

namespace gomodproxy::upstream {

/// Not thread-safe; one per response body.
class gzip_decoder final {
 public:
  static constexpr std::size_t max_piece = std::size_t{64} * 1024;

  enum class status {
    ok,       ///< all input consumed, every decoded piece accepted
    corrupt,  ///< the input is not valid gzip (bad header, CRC, or data)
    refused,  ///< `out` returned false; decoding stopped
  };

  gzip_decoder();
  ~gzip_decoder();
  gzip_decoder(const gzip_decoder&) = delete;
  gzip_decoder& operator=(const gzip_decoder&) = delete;

  /// Decodes `compressed` and passes every decoded piece (non-empty, at most max_piece bytes) to
  /// `out`, in order. Concatenated gzip members are decoded one after another, as Go does.
  [[nodiscard]] status write(std::string_view compressed,
                             const std::function<bool(std::string_view)>& out);

  /// True when the input so far ends exactly at the end of a gzip member; false for an empty or
  /// cut-off stream.
  [[nodiscard]] bool complete() const noexcept;

 private:
  enum class step { progressed, stalled, corrupt, refused };
  step inflate_once(const std::function<bool(std::string_view)>& out, std::size_t& produced);

  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace gomodproxy::upstream
