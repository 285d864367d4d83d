// The newest signed tree head this cache has verified for each checksum database: fills and
// bundle imports check a new tree against it (a tree that neither extends it nor is extended by
// it is a fork) and remember the new one when it is larger.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cache/cache_store.hpp"
#include "sumdb/tree_note.hpp"

namespace gomodproxy::resolver {

/// The cache key the remembered tree of `database_name` is kept under; no request maps to it.
std::string verified_tree_key(std::string_view database_name);

/// The remembered tree of `database_name`, or nullopt when none is stored or it cannot be read.
std::optional<sumdb::tree_head> remembered_tree(cache::cache_store& store,
                                                std::string_view database_name);

/// Remembers `head` unless the stored tree is at least as large, so the remembered tree only
/// ever grows however fills and imports interleave; `tier` names where it came from in the
/// entry's meta. False only when the write failed.
[[nodiscard]] bool remember_tree(cache::cache_store& store, std::string_view database_name,
                                 const sumdb::tree_head& head, std::string_view tier = {});

}  // namespace gomodproxy::resolver
