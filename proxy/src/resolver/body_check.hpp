// Checks an upstream answer before it may be cached or served: per endpoint kind, size limits,
// .info JSON shape and version echo, go.mod module directive, module zip structure.
#pragma once

#include <cstdint>
#include <string>

#include "common/failure.hpp"
#include "protocol/request.hpp"
#include "sumdb/signed_note.hpp"
#include "sumdb/tree_note.hpp"
#include "sumdb/zip_check.hpp"

namespace gomodproxy::resolver {

/// Largest body accepted from an upstream for this endpoint kind: 500 MiB for zips, 16 MiB for
/// go.mod, 1 MiB for list and JSON answers.
std::uint64_t body_limit(protocol::endpoint kind);

/// Success when the `size` bytes readable through `read` are an acceptable answer to `request`;
/// otherwise a failure whose detail is a one-line reason: too_large past body_limit,
/// verification_failed for an answer that is not what was asked, the reader's own code when it
/// fails, cache_corrupt when it gives fewer bytes than `size`.
[[nodiscard]] outcome_of<void> check_body(const protocol::module_request& request,
                                          std::uint64_t size, const sumdb::random_reader& read);

/// For a checksum database's /lookup and /latest answers: success when the tree head note is
/// signed by `key` and parses, and for a lookup when its record names request's module and
/// version and lies inside that tree; otherwise a failure as for check_body, verification_failed
/// for what does not check. (The record's inclusion in the tree is the go command's to prove,
/// with the tiles.)
[[nodiscard]] outcome_of<void> check_signed_answer(const protocol::module_request& request,
                                                   std::uint64_t size,
                                                   const sumdb::random_reader& read,
                                                   const sumdb::verifier_key& key);

}  // namespace gomodproxy::resolver
