// What go.sum, go.mod and go.work files pin: the module versions `gomodproxy prefetch` warms.
// Pure text parsing; reading files and walking directories is pin_sources' job.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gomodproxy::prefetch {

/// One module version a file pins. `go_mod_only` means only its go.mod is needed (a go.sum
/// "/go.mod" line); otherwise its .info, .mod and .zip are.
struct pin {
  std::string module_path;
  std::string version;  ///< canonical semver, as go.sum and a tidy go.mod write it
  bool go_mod_only = false;
  bool operator==(const pin&) const = default;
};

/// What a file yields: its pins in file order, and one "line N: reason" per line that could not
/// be used (the other lines are still read).
struct parsed_pins {
  std::vector<pin> pins;
  std::vector<std::string> problems;
};

/// go.sum: `MODULE VERSION/go.mod HASH` pins the go.mod, `MODULE VERSION HASH` the whole module.
/// Blank lines are skipped.
parsed_pins parse_go_sum(std::string_view text);

/// go.mod: every `require` (single lines and blocks, `// indirect` or not) pins the whole module,
/// except a requirement a `replace` in the same file redirects. A replacement by another module
/// version pins that version instead; one by a local directory (./x, ../x, /x) pins nothing, since
/// it is never fetched through a proxy. Other directives (module, go, exclude, retract, ...) are
/// skipped.
parsed_pins parse_go_mod(std::string_view text);

/// go.work: the directories of its `use` directives (single and blocks, as written, relative to
/// the go.work's directory unless absolute), and the module versions its `replace` directives
/// pin (as for go.mod).
struct parsed_work {
  std::vector<std::string> use_dirs;
  parsed_pins replaced;
};
parsed_work parse_go_work(std::string_view text);

}  // namespace gomodproxy::prefetch
