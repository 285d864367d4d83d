#include "probe_report/probe_run.hpp"

namespace gomodproxy::probe_report {

std::string_view kind_name(request_kind kind) {
  switch (kind) {
    case request_kind::list:
      return "list";
    case request_kind::info:
      return "info";
    case request_kind::mod:
      return "mod";
    case request_kind::zip:
      return "zip";
  }
  return "unknown";
}

}  // namespace gomodproxy::probe_report
