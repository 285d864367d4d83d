// The files `gomodproxy prefetch` is given, or finds under a directory, and the module versions
// they pin together, each once.
#pragma once

#include <string>
#include <vector>

#include "common/failure.hpp"
#include "prefetch/pin_files.hpp"

namespace gomodproxy::prefetch {

/// What the named files and directories pin.
struct collected_pins {
  std::vector<std::string> files;  ///< every file read, in reading order
  /// Each module version once; a version pinned whole anywhere is pinned whole.
  std::vector<pin> pins;
  /// "FILE: line N: reason" for lines that pin nothing usable, and "FILE: reason" for a go.work
  /// `use` directory without a go.mod, a file that cannot be read or a directory without any
  /// of these files.
  std::vector<std::string> problems;
};

/// Reads each argument: a go.sum, go.mod, go.work or go.work.sum file (told apart by the end of
/// its name), or a directory, under which every such file is read except below vendor/,
/// testdata/ and directories whose name starts with "." or "_", which the go command skips too.
/// A go.work also brings in the go.mod and go.sum of each `use` directory. Fails with
/// errc::invalid_request and a one-line usage message as the detail when an argument does not
/// exist or is a file of another kind.
[[nodiscard]] outcome_of<collected_pins> collect_pins(const std::vector<std::string>& arguments);

}  // namespace gomodproxy::prefetch
