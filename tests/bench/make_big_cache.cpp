// Fills a cache directory with generated entries through the real store API (the same
// open_rocksdb_store and entry_writer a serving proxy commits with), so the start-up benchmark
// opens a cache laid out exactly as production writes it, without a bench-only path in the
// server. Four entries per module: list, .info, .mod and a 4 KiB .zip.
//
//   make_big_cache DIR [ENTRIES]     (ENTRIES defaults to 100000)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "cache/cache_store.hpp"

namespace {

using gomodproxy::cache::entry_kind;

bool put(gomodproxy::cache::cache_store& store, const std::string& key, const std::string& body,
         entry_kind kind) {
  auto writer = store.create(key);
  if (!writer) return false;
  if (!(*writer)->append(body)) return false;
  gomodproxy::cache::entry_meta meta;
  meta.kind = kind;
  meta.tier = "bench";
  return static_cast<bool>((*writer)->commit(meta));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: make_big_cache DIR [ENTRIES]\n");
    return 2;
  }
  const long entries = argc == 3 ? std::strtol(argv[2], nullptr, 10) : 100000;
  if (entries <= 0) {
    std::fprintf(stderr, "make_big_cache: ENTRIES must be a positive number\n");
    return 2;
  }
  gomodproxy::cache::rocksdb_options options;
  options.path = argv[1];
  auto opened = gomodproxy::cache::open_rocksdb_store(options);
  if (!opened) {
    std::fprintf(stderr, "make_big_cache: %s\n", opened.error().detail.c_str());
    return 1;
  }
  auto& store = **opened;
  const auto started = std::chrono::steady_clock::now();
  // Random bytes, as a compressed zip is: nothing for RocksDB's compression to shrink.
  std::mt19937_64 random(15);
  std::string zip(4096, '\0');
  long written = 0;
  for (long module = 0; written < entries; ++module) {
    const std::string path = "example.com/bench/m" + std::to_string(module);
    const std::string base = "/" + path + "/@v/";
    for (auto& byte : zip) byte = static_cast<char>(random());
    const std::pair<std::string, std::string> files[] = {
        {base + "list", "v1.0.0\n"},
        {base + "v1.0.0.info", R"({"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"})"},
        {base + "v1.0.0.mod", "module " + path + "\n\ngo 1.19\n"},
        {base + "v1.0.0.zip", zip},
    };
    for (const auto& [key, body] : files) {
      if (written == entries) break;
      const auto kind = key.ends_with("/list") ? entry_kind::expiring : entry_kind::immutable;
      if (!put(store, key, body, kind)) {
        std::fprintf(stderr, "make_big_cache: cannot write %s\n", key.c_str());
        return 1;
      }
      ++written;
    }
  }
  const auto stats = store.stats();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%llu entries, %llu bytes in %s (%.1f s)\n",
              static_cast<unsigned long long>(stats.entries),
              static_cast<unsigned long long>(stats.bytes), argv[1], seconds);
  return 0;
}
