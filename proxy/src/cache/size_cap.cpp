#include "cache/size_cap.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <system_error>

namespace gomodproxy::cache::size_cap {

bool evictable(std::string_view key) {
  return !key.starts_with("/sumdb/") && !key.starts_with("/gomodproxy/");
}

std::optional<std::uint64_t> disk_usage(const std::string& dir) {
  return disk_usage(dir, [](std::uint64_t) { return true; });
}

namespace {

// "000123.sst" or "000123.blob" -> 123.
std::optional<std::uint64_t> data_file_number(const std::string& name) {
  const auto dot = name.find('.');
  if (dot == 0 || dot == std::string::npos) return std::nullopt;
  const auto suffix = std::string_view(name).substr(dot);
  if (suffix != ".sst" && suffix != ".blob") return std::nullopt;
  std::uint64_t number = 0;
  for (std::size_t i = 0; i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9' || i >= 19) return std::nullopt;
    number = number * 10 + static_cast<std::uint64_t>(name[i] - '0');
  }
  return number;
}

}  // namespace

std::optional<std::uint64_t> disk_usage(const std::string& dir,
                                        const std::function<bool(std::uint64_t)>& live) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  if (ec) return std::nullopt;
  std::uint64_t total = 0;
  struct stat dir_info {};
  if (::lstat(dir.c_str(), &dir_info) == 0) {
    total += static_cast<std::uint64_t>(dir_info.st_blocks) * 512;
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      // RocksDB deletes obsolete files while we walk; the rest still counts.
      ec.clear();
      continue;
    }
    if (const auto number = data_file_number(it->path().filename().string());
        number && !live(*number)) {
      continue;
    }
    struct stat info {};
    if (::lstat(it->path().c_str(), &info) == 0) {
      total += static_cast<std::uint64_t>(info.st_blocks) * 512;
    }
  }
  return total;
}

recency_table::shard& recency_table::shard_for(std::string_view key) {
  return shards_[std::hash<std::string_view>{}(key) % shard_count];
}

const recency_table::shard& recency_table::shard_for(std::string_view key) const {
  return shards_[std::hash<std::string_view>{}(key) % shard_count];
}

void recency_table::touch(std::string_view key, std::int64_t used_at_ms) {
  auto& s = shard_for(key);
  std::lock_guard lock(s.mutex);
  auto found = s.used_at.find(std::string(key));
  if (found == s.used_at.end()) {
    s.used_at.emplace(std::string(key), used_at_ms);
  } else if (found->second < used_at_ms) {
    found->second = used_at_ms;
  }
}

std::optional<std::int64_t> recency_table::find(std::string_view key) const {
  const auto& s = shard_for(key);
  std::lock_guard lock(s.mutex);
  const auto found = s.used_at.find(std::string(key));
  if (found == s.used_at.end()) return std::nullopt;
  return found->second;
}

void recency_table::forget(std::string_view key) {
  auto& s = shard_for(key);
  std::lock_guard lock(s.mutex);
  s.used_at.erase(std::string(key));
}

std::vector<std::pair<std::string, std::int64_t>> recency_table::take() {
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (auto& s : shards_) {
    std::unordered_map<std::string, std::int64_t> taken;
    {
      std::lock_guard lock(s.mutex);
      taken.swap(s.used_at);
    }
    for (auto& [key, used_at] : taken) out.emplace_back(key, used_at);
  }
  return out;
}

std::size_t recency_table::size() const {
  std::size_t total = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    total += s.used_at.size();
  }
  return total;
}

void lru_picker::offer(candidate offered) {
  kept_bytes_ += offered.bytes;
  kept_.push(std::move(offered));
  // Drop the most recently used while the rest still free enough.
  while (!kept_.empty() && kept_bytes_ - kept_.top().bytes >= wanted_) {
    kept_bytes_ -= kept_.top().bytes;
    kept_.pop();
  }
}

std::vector<candidate> lru_picker::take() {
  std::vector<candidate> out;
  out.reserve(kept_.size());
  while (!kept_.empty()) {
    out.push_back(kept_.top());
    kept_.pop();
  }
  std::reverse(out.begin(), out.end());
  kept_bytes_ = 0;
  return out;
}

}  // namespace gomodproxy::cache::size_cap
