// config/bootstrap.sh, compiled in so the proxy can serve it at /bootstrap.sh.
#pragma once

#include <string_view>

namespace gomodproxy::config {

/// The bytes of config/bootstrap.sh as of this build.
std::string_view bootstrap_script();

}  // namespace gomodproxy::config
