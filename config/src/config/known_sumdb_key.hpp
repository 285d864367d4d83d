// The verifier key of sum.golang.org, spelled once in config/sum.golang.org.key and compiled in.
#pragma once

#include <string_view>

namespace gomodproxy::config {

/// The public verifier key of sum.golang.org, byte for byte the one compiled into the go command
/// (cmd/go/internal/modfetch/key.go). The build refuses to configure when config/bootstrap.sh or
/// config/gomodproxy.example.toml carries other bytes.
std::string_view sum_golang_org_key();

}  // namespace gomodproxy::config
