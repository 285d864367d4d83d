// What a probe observed: every request to every upstream and what each upstream's list said
// about each module in each round. The network part fills it; the report reads it.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "probe_report/module_list.hpp"

namespace gomodproxy::probe_report {

/// The four requests asked per module, in the order they are asked.
enum class request_kind { list, info, mod, zip };

inline constexpr std::array<request_kind, 4> all_request_kinds = {
    request_kind::list, request_kind::info, request_kind::mod, request_kind::zip};

/// "list", "info", "mod", "zip".
std::string_view kind_name(request_kind kind);

/// One request to one upstream.
struct request_sample {
  request_kind kind = request_kind::list;
  int status = 0;  ///< final HTTP status; 0 when no response arrived
  /// True for 200 and for 404/410 ("not found" is an answer); false for transport errors,
  /// timeouts, other statuses and bodies that failed mid-way.
  bool answered = false;
  /// Request start until the response headers; nullopt when no response arrived.
  std::optional<std::chrono::microseconds> ttfb;
  std::chrono::microseconds elapsed{0};  ///< request start until the body was read or it failed
  std::uint64_t body_bytes = 0;          ///< decoded body bytes of a 200
  std::string failure;                   ///< one-line reason when !answered
};

/// How an upstream answered a module's @v/list.
enum class list_answer { found, not_found, failed };

/// What one upstream said about one module in one round.
struct module_lookup {
  std::size_t module_index = 0;  ///< into probe_run::modules
  list_answer list = list_answer::failed;
  std::vector<std::string> versions;  ///< canonical versions of a 200 list, without duplicates
  /// The version asked for .info/.mod/.zip: the pin, else the newest listed; nullopt when there
  /// was none, and those three requests were not made.
  std::optional<std::string> probed_version;
  bool info_found = false;  ///< the .info request answered 200
};

/// One entry of --upstreams and everything asked of it.
struct upstream_run {
  std::string name;  ///< display name, unique within the run
  std::string url;   ///< base URL without credentials; empty for direct/off
  /// Why the entry was not probed ("direct" and "off" are not HTTP mirrors); nullopt if probed.
  std::optional<std::string> skipped;
  std::vector<request_sample> requests;
  std::vector<module_lookup> lookups;  ///< one per module per round
};

struct probe_run {
  std::vector<module_target> modules;
  int rounds = 1;
  std::chrono::milliseconds timeout{0};
  std::vector<upstream_run> upstreams;
};

}  // namespace gomodproxy::probe_report
