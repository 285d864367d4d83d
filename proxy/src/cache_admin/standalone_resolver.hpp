// A resolver for the cache commands that run without a server (`cache verify --online`,
// `cache export`): what it asks the checksum databases is verified and cached the way a fill
// does it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cache/cache_store.hpp"
#include "resolver/resolver.hpp"
#include "upstream/http_client.hpp"

namespace gomodproxy::cache_admin {

/// Runs a resolver over `options`' tiers and checksum databases on a work thread of its own;
/// each call blocks until its answer is in. `store` must outlive it.
class standalone_resolver {
 public:
  standalone_resolver(const resolver::resolver_options& options,
                      const upstream::client_options& client_options, cache::cache_store& store);
  standalone_resolver(const standalone_resolver&) = delete;
  standalone_resolver& operator=(const standalone_resolver&) = delete;
  ~standalone_resolver();

  /// resolver::database_hash.
  resolver::resolver::database_answer database_hash(const std::string& module_path,
                                                    const std::string& version, bool go_mod);
  /// The body of a GET of `target` (a request path, e.g. "/sumdb/<name>/tile/8/0/000") when it
  /// is answered 200 within 1 MiB; nullopt otherwise.
  std::optional<std::string> get(const std::string& target);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace gomodproxy::cache_admin
