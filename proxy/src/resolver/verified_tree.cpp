#include "resolver/verified_tree.hpp"

#include <mutex>

namespace gomodproxy::resolver {
namespace {

// One lock for the whole process, not one per store or resolver: the compare and the write must
// be one step for every writer of the key (the resolver's fills and the live import endpoint
// hold different objects over the same store), and a cache directory is only ever open in one
// process at a time (RocksDB's LOCK file), so no other writer exists.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): process-wide on purpose.
std::mutex remember_mutex;

}  // namespace

std::string verified_tree_key(std::string_view database_name) {
  return "/gomodproxy/verified-tree/" + std::string(database_name);
}

std::optional<sumdb::tree_head> remembered_tree(cache::cache_store& store,
                                                std::string_view database_name) {
  auto reader = store.open(verified_tree_key(database_name));
  if (!reader || !*reader) return std::nullopt;
  auto text = (*reader)->read(0, static_cast<std::size_t>((*reader)->meta().size));
  if (!text) return std::nullopt;
  auto head = sumdb::parse_tree_head(*text);
  if (!head) return std::nullopt;
  return *head;
}

bool remember_tree(cache::cache_store& store, std::string_view database_name,
                   const sumdb::tree_head& head, std::string_view tier) {
  std::lock_guard lock(remember_mutex);
  if (auto known = remembered_tree(store, database_name); known && known->size >= head.size) {
    return true;
  }
  auto created = store.create(verified_tree_key(database_name));
  if (!created) return false;
  cache::entry_meta meta;
  meta.kind = cache::entry_kind::immutable;
  meta.tier = std::string(tier);
  return (*created)->append(sumdb::format_tree_head(head)) && (*created)->commit(meta);
}

}  // namespace gomodproxy::resolver
