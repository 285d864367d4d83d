// Checks an upstream answer before it may be cached or served: per endpoint kind, size limits,
// .info JSON shape and version echo, go.mod module directive, module zip structure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "protocol/request.hpp"
#include "sumdb/zip_check.hpp"

namespace gomodproxy::resolver {

/// Largest body accepted from an upstream for this endpoint kind: 500 MiB for zips, 16 MiB for
/// go.mod, 1 MiB for list and JSON answers.
std::uint64_t body_limit(protocol::endpoint kind);

/// nullopt when the `size` bytes readable through `read` are an acceptable answer to
/// `request`; otherwise a one-line reason.
std::optional<std::string> check_body(const protocol::module_request& request, std::uint64_t size,
                                      const sumdb::random_reader& read);

}  // namespace gomodproxy::resolver
