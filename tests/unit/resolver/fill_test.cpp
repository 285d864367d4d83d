// The fill as seen from the tier seam (upstream::tier, built through the tier_factory, which is
// how production plugs in http_tier and the direct fetcher): the real resolver and a real
// RocksDB store in a temp dir, with scripted tiers (scripted_tier.hpp) that record every request
// they are handed and answer as told (a body, not found, an error, a timeout, or a body after a
// delay). The cache policy itself (TTLs, negative cache, stale-if-error) is cache_policy_test.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cache/cache_store.hpp"
#include "protocol/request.hpp"
#include "resolver/resolver.hpp"
#include "sumdb/signed_note.hpp"
#include "tests/unit/resolver/capturing_writer.hpp"
#include "tests/unit/resolver/scripted_tier.hpp"
#include "upstream/tier.hpp"

namespace gomodproxy::resolver {
namespace {
using namespace std::chrono_literals;
using fill_testing::answer;
using fill_testing::scripted_harness;
using fill_testing::tier_script;
using fill_testing::tiers;
using protocol::endpoint;

const std::string info_target = "/example.com/hello/@v/v1.2.0.info";
const std::string info_body = R"({"Version":"v1.2.0","Time":"2024-01-01T00:00:00Z"})";

std::function<void(resolver_options&)> public_tiers(const std::string& list) {
  return [list](resolver_options& options) { options.tiers = tiers(list); };
}

// ---- What the tier is handed -------------------------------------------------------------

// Whatever the client's spelling (case-escaped, percent-encoded), the tier gets the request as
// parsed: its kind, the unescaped module path and version, and the canonical upstream path.
TEST(fill_with_scripted_tier, the_tier_is_handed_the_parsed_request) {
  struct expectation {
    std::string target;
    endpoint kind;
    std::string module_path;
    std::string version;
    std::string upstream_path;
  };
  const std::vector<expectation> table = {
      {"/example.com/!hello/@v/list", endpoint::list, "example.com/Hello", "",
       "/example.com/!hello/@v/list"},
      {"/example.com/!hello/@v/v1.2.0.info", endpoint::info, "example.com/Hello", "v1.2.0",
       "/example.com/!hello/@v/v1.2.0.info"},
      {"/example.com/%21hello/@v/v1.2.0.mod", endpoint::mod, "example.com/Hello", "v1.2.0",
       "/example.com/!hello/@v/v1.2.0.mod"},
      {"/example.com/!hello/@v/v1.2.0-!r!c1.zip", endpoint::zip, "example.com/Hello", "v1.2.0-RC1",
       "/example.com/!hello/@v/v1.2.0-!r!c1.zip"},
      {"/example.com/!hello/@v/master.info", endpoint::query, "example.com/Hello", "master",
       "/example.com/!hello/@v/master.info"},
      {"/example.com/!hello/@latest", endpoint::latest, "example.com/Hello", "",
       "/example.com/!hello/@latest"},
  };
  scripted_harness harness({{"a.test", tier_script::not_found()}}, public_tiers("https://a.test"));
  for (const auto& expected : table) {
    const std::size_t before = harness.tier("a.test").times_asked();
    const auto got = harness.get(expected.target);
    EXPECT_EQ(got.status, 404) << expected.target << ": " << got.body;
    const auto asked = harness.tier("a.test").asked();
    ASSERT_GT(asked.size(), before) << expected.target << " never reached the tier";
    const auto& request = asked[before];
    EXPECT_EQ(request.kind, expected.kind) << expected.target;
    EXPECT_EQ(request.module_path, expected.module_path) << expected.target;
    EXPECT_EQ(request.version, expected.version) << expected.target;
    EXPECT_EQ(request.upstream_path, expected.upstream_path) << expected.target;
    EXPECT_TRUE(request.sumdb.empty()) << expected.target;
  }
}

// The factory is asked once per configured entry, at construction, never per request.
TEST(fill_with_scripted_tier, each_tier_is_built_once) {
  scripted_harness harness(
      {{"a.test", tier_script::not_found()}, {"b.test", tier_script::ok(info_body)}},
      public_tiers("https://a.test,https://b.test"));
  EXPECT_EQ(harness.factory_calls("a.test"), 1);
  EXPECT_EQ(harness.factory_calls("b.test"), 1);
  EXPECT_EQ(harness.get(info_target).status, 200);
  EXPECT_EQ(harness.get("/example.com/other/@v/list").status, 200);
  EXPECT_EQ(harness.tier("b.test").times_asked(), 2u);
  EXPECT_EQ(harness.factory_calls("a.test"), 1);
  EXPECT_EQ(harness.factory_calls("b.test"), 1);
}

// ---- Fall-through: ',' only past a not-found, '|' past any failure --------------------------

TEST(fill_with_scripted_tier, a_comma_falls_through_past_not_found_only) {
  {
    scripted_harness harness(
        {{"a.test", tier_script::not_found()}, {"b.test", tier_script::ok(info_body)}},
        public_tiers("https://a.test,https://b.test"));
    const auto got = harness.get(info_target);
    EXPECT_EQ(got.status, 200) << got.body;
    EXPECT_EQ(got.body, info_body);
    EXPECT_EQ(harness.tier("b.test").times_asked(), 1u);
  }
  for (const auto& failure : {tier_script::error(), tier_script::timeout()}) {
    scripted_harness harness({{"a.test", failure}, {"b.test", tier_script::ok(info_body)}},
                             public_tiers("https://a.test,https://b.test"));
    const auto got = harness.get(info_target);
    EXPECT_EQ(got.status, 404) << got.body;
    EXPECT_EQ(got.body, "not found: example.com/hello@v1.2.0\na.test: " + failure.reason + "\n");
    EXPECT_EQ(harness.tier("a.test").times_asked(), 1u);
    EXPECT_EQ(harness.tier("b.test").times_asked(), 0u) << "',' fell through past a failure";
  }
}

TEST(fill_with_scripted_tier, a_pipe_falls_through_past_any_failure) {
  for (const auto& failure :
       {tier_script::not_found(), tier_script::error(), tier_script::timeout()}) {
    scripted_harness harness({{"a.test", failure}, {"b.test", tier_script::ok(info_body)}},
                             public_tiers("https://a.test|https://b.test"));
    const auto got = harness.get(info_target);
    EXPECT_EQ(got.status, 200) << got.body;
    EXPECT_EQ(got.body, info_body);
    EXPECT_EQ(harness.tier("a.test").times_asked(), 1u);
    EXPECT_EQ(harness.tier("b.test").times_asked(), 1u);
  }
}

// ---- What users read -----------------------------------------------------------------------

// Each tier's reason is its own line of the 404 body, "<tier name>: <reason>": how the direct
// fetcher's go command failure reaches the user.
TEST(fill_with_scripted_tier, each_tier_reason_is_a_line_of_the_404_body) {
  const std::string go_failure =
      "go mod download: git ls-remote -q origin in /cache/direct/vcs/1f2e: exit status 128: "
      "remote: Repository not found";
  scripted_harness harness(
      {{"a.test", tier_script::not_found("410")}, {"direct", tier_script::not_found(go_failure)}},
      public_tiers("https://a.test,direct"));
  const auto got = harness.get(info_target);
  EXPECT_EQ(got.status, 404);
  EXPECT_EQ(got.cache_control, "no-store");
  EXPECT_EQ(got.body,
            "not found: example.com/hello@v1.2.0\na.test: 410\ndirect: " + go_failure + "\n");
}

// ---- What is remembered --------------------------------------------------------------------

// A tier that timed out or failed may answer next time: nothing is remembered, and the next
// request asks it again.
TEST(fill_with_scripted_tier, a_timeout_or_an_error_is_not_remembered) {
  for (const auto& failure : {tier_script::timeout(), tier_script::error()}) {
    scripted_harness harness({{"direct", failure}}, public_tiers("direct"));
    const auto first = harness.get(info_target);
    EXPECT_EQ(first.status, 404);
    EXPECT_EQ(first.cache_control, "no-store");
    EXPECT_EQ(first.body, "not found: example.com/hello@v1.2.0\ndirect: " + failure.reason + "\n");
    EXPECT_EQ(harness.get(info_target).status, 404);
    EXPECT_EQ(harness.tier("direct").times_asked(), 2u) << failure.reason << " was remembered";
    harness.tier("direct").answer_with(tier_script::ok(info_body));
    const auto recovered = harness.get(info_target);
    EXPECT_EQ(recovered.status, 200) << recovered.body;
    EXPECT_EQ(recovered.body, info_body);
  }
}

// ---- A tier the process cannot build --------------------------------------------------------

// The factory gives no tier for `direct` in a process without a direct fetcher: that entry
// answers "direct: not available in this process" and ends the walk, whatever follows it.
TEST(fill_with_scripted_tier, a_tier_the_factory_cannot_build_is_not_available_and_ends_the_walk) {
  {
    scripted_harness harness({{"a.test", tier_script::error()}},
                             public_tiers("https://a.test|direct"));
    EXPECT_EQ(harness.factory_calls("direct"), 1);
    const auto got = harness.get(info_target);
    EXPECT_EQ(got.status, 404);
    EXPECT_EQ(got.body,
              "not found: example.com/hello@v1.2.0\na.test: connection refused\n"
              "direct: not available in this process\n");
  }
  {
    scripted_harness harness({{"b.test", tier_script::ok(info_body)}},
                             [](resolver_options& options) {
                               // parse_upstream_list stops at direct; a list built in code may not.
                               auto specs = tiers("direct");
                               specs.front().fall_through_on_error = true;
                               specs.push_back(tiers("https://b.test").front());
                               options.tiers = specs;
                             });
    const auto got = harness.get(info_target);
    EXPECT_EQ(got.status, 404) << got.body;
    EXPECT_EQ(got.body,
              "not found: example.com/hello@v1.2.0\ndirect: not available in this process\n");
    EXPECT_EQ(harness.tier("b.test").times_asked(), 0u) << "the walk went on past direct";
  }
}

// ---- Private modules -----------------------------------------------------------------------

// A module matching --private is asked of the private tiers only, however they answer; a
// public module never reaches them.
TEST(fill_with_scripted_tier, a_private_module_never_reaches_a_public_tier) {
  for (const auto& private_answer :
       {tier_script::not_found(), tier_script::error(), tier_script::ok(info_body)}) {
    scripted_harness harness(
        {{"public.test", tier_script::ok(info_body)}, {"private.test", private_answer}},
        [](resolver_options& options) {
          options.tiers = tiers("https://public.test");
          options.private_tiers = tiers("https://private.test");
          options.private_patterns = {"*.corp.example.test"};
        });
    const auto got = harness.get("/git.corp.example.test/team/lib/@v/v1.2.0.info");
    const auto asked = harness.tier("private.test").asked();
    ASSERT_EQ(asked.size(), 1u);
    EXPECT_EQ(asked.front().module_path, "git.corp.example.test/team/lib");
    EXPECT_EQ(harness.tier("public.test").times_asked(), 0u) << "a private module went public";
    if (private_answer.what == tier_script::answer::ok) {
      EXPECT_EQ(got.status, 200) << got.body;
    } else {
      EXPECT_EQ(got.status, 404);
      EXPECT_EQ(got.body, "not found: git.corp.example.test/team/lib@v1.2.0\nprivate.test: " +
                              private_answer.reason + "\n");
    }

    EXPECT_EQ(harness.get(info_target).status, 200);
    EXPECT_EQ(harness.tier("public.test").times_asked(), 1u);
    EXPECT_EQ(harness.tier("private.test").times_asked(), 1u) << "a public module went private";
  }
}

// ---- Hedging -------------------------------------------------------------------------------

// A tier that has not started answering after hedge_after gets the next one asked alongside;
// the first valid answer is served, long before the slow tier would have answered.
TEST(fill_with_scripted_tier, a_slow_tier_is_hedged_and_the_first_answer_served) {
  const std::string slow_body = R"({"Version":"v1.2.0","Time":"2020-01-01T00:00:00Z"})";
  scripted_harness harness(
      {{"a.test", tier_script::slow(slow_body, 3s)}, {"b.test", tier_script::ok(info_body)}},
      [](resolver_options& options) {
        options.tiers = tiers("https://a.test|https://b.test");
        options.hedge_after = 100ms;
      });
  const auto started = std::chrono::steady_clock::now();
  const auto got = harness.get(info_target);
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.body, info_body);
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 2s) << "served only after the slow tier";
  EXPECT_EQ(harness.tier("a.test").times_asked(), 1u);
  EXPECT_EQ(harness.tier("b.test").times_asked(), 1u);
}

// ---- Offline: the cache answers, nothing is asked ------------------------------------------

const std::string sumdb_key_text =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

// Every tier and the checksum database would answer anything they were asked, so only the
// offline decision keeps them unasked.
scripted_harness offline_harness(const std::string& public_list) {
  return scripted_harness(
      {{"a.test", tier_script::ok(info_body)},
       {"private.test", tier_script::ok(info_body)},
       {"sumdb.test", tier_script::ok("from the checksum database\n")}},
      [public_list](resolver_options& options) {
        options.tiers = tiers(public_list);
        options.private_tiers = tiers("https://private.test");
        options.private_patterns = {"*.corp.example.test"};
        auto key = sumdb::parse_verifier_key(sumdb_key_text);
        if (!key) throw std::runtime_error("sumdb key: " + key.error().message());
        options.sumdbs.push_back({"sum.golang.org", tiers("https://sumdb.test"), *key});
        options.verify_sumdb = true;
        options.list_ttl = 1s;
        options.negative_ttl = 1s;
        options.offline = true;
      });
}

// Commits `body` under the cache key of `target`, stored at the epoch's first millisecond:
// older than any TTL.
void seed(cache::cache_store& store, const std::string& target, cache::entry_kind kind,
          const std::string& body) {
  auto parsed = protocol::parse_module_request(target);
  ASSERT_TRUE(parsed) << target;
  auto created = store.create(parsed->cache_key);
  ASSERT_TRUE(created) << target;
  ASSERT_TRUE((*created)->append(body)) << target;
  cache::entry_meta meta;
  meta.kind = kind;
  meta.stored_at_ms = 1;
  meta.tier = "a.test";
  ASSERT_TRUE((*created)->commit(meta)) << target;
}

bool cached(cache::cache_store& store, const std::string& target) {
  auto found = store.stat(protocol::parse_module_request(target).value().cache_key);
  return found && *found;
}

TEST(offline, every_entry_is_served_whatever_its_age_and_nothing_is_asked) {
  auto harness = offline_harness("https://a.test");
  const std::string list = "v1.0.0\nv1.2.0\n";
  const std::string tree_head = "go.sum database tree\n7\nhash\n\nsignature\n";
  const std::string lookup = "record\n";
  seed(harness.store(), "/example.com/hello/@v/list", cache::entry_kind::expiring, list);
  seed(harness.store(), info_target, cache::entry_kind::immutable, info_body);
  seed(harness.store(), "/sumdb/sum.golang.org/latest", cache::entry_kind::expiring, tree_head);
  seed(harness.store(), "/sumdb/sum.golang.org/lookup/example.com/hello@v1.2.0",
       cache::entry_kind::immutable, lookup);

  const std::vector<std::pair<std::string, std::string>> served = {
      {"/example.com/hello/@v/list", list},
      {info_target, info_body},
      {"/sumdb/sum.golang.org/latest", tree_head},
      {"/sumdb/sum.golang.org/lookup/example.com/hello@v1.2.0", lookup},
      {"/sumdb/sum.golang.org/supported", ""},
      // No @latest is cached: worked out from the cached list and .info, as online.
      {"/example.com/hello/@latest", info_body},
  };
  for (const auto& [target, body] : served) {
    const auto got = harness.get(target);
    EXPECT_EQ(got.status, 200) << target << ": " << got.body;
    EXPECT_EQ(got.body, body) << target;
  }
  for (const char* name : {"a.test", "private.test", "sumdb.test"}) {
    EXPECT_EQ(harness.tier(name).times_asked(), 0u) << name << " was asked";
  }
}

// An expired @latest from a tier is served as it is, not replaced by one worked out from a
// newer cached list.
TEST(offline, a_cached_latest_is_served_however_old) {
  auto harness = offline_harness("https://a.test");
  const std::string old_latest = R"({"Version":"v1.0.0","Time":"2023-01-01T00:00:00Z"})";
  seed(harness.store(), "/example.com/hello/@latest", cache::entry_kind::expiring, old_latest);
  seed(harness.store(), "/example.com/hello/@v/list", cache::entry_kind::expiring,
       "v1.0.0\nv1.2.0\n");
  seed(harness.store(), info_target, cache::entry_kind::immutable, info_body);
  for (int round = 0; round < 2; ++round) {
    const auto got = harness.get("/example.com/hello/@latest");
    EXPECT_EQ(got.status, 200) << got.body;
    EXPECT_EQ(got.body, old_latest);
  }
  EXPECT_EQ(harness.tier("a.test").times_asked(), 0u);
}

TEST(offline, a_miss_is_a_404_that_says_so_and_is_not_remembered) {
  auto harness = offline_harness("https://a.test");
  // A not-found older than negative_ttl: online it would be asked about again.
  seed(harness.store(), "/example.com/gone/@v/v1.0.0.info", cache::entry_kind::not_found,
       "not found: example.com/gone@v1.0.0\na.test: 404\n");
  const std::vector<std::pair<std::string, std::string>> misses = {
      {info_target, "example.com/hello@v1.2.0"},
      {"/example.com/hello/@v/v1.2.0.mod", "example.com/hello@v1.2.0"},
      {"/example.com/hello/@v/v1.2.0.zip", "example.com/hello@v1.2.0"},
      {"/example.com/hello/@v/list", "example.com/hello/@v/list"},
      {"/example.com/hello/@latest", "example.com/hello@latest"},
      {"/example.com/hello/@v/master.info", "example.com/hello@master"},
      {"/example.com/gone/@v/v1.0.0.info", "example.com/gone@v1.0.0"},
      {"/git.corp.example.test/team/lib/@v/v1.2.0.info", "git.corp.example.test/team/lib@v1.2.0"},
      {"/sumdb/sum.golang.org/latest", "sum.golang.org/latest"},
      {"/sumdb/sum.golang.org/lookup/example.com/hello@v1.2.0", "example.com/hello@v1.2.0"},
      {"/sumdb/sum.golang.org/tile/8/0/000", "sum.golang.org/tile/8/0/000"},
  };
  for (int round = 0; round < 2; ++round) {
    for (const auto& [target, what] : misses) {
      const auto got = harness.get(target);
      EXPECT_EQ(got.status, 404) << target;
      EXPECT_EQ(got.body, "offline: not cached: " + what + "\n") << target;
      EXPECT_EQ(got.cache_control, "no-store") << target;
    }
  }
  EXPECT_FALSE(cached(harness.store(), info_target)) << "a miss was remembered";
  EXPECT_FALSE(cached(harness.store(), "/example.com/hello/@latest"));
  for (const char* name : {"a.test", "private.test", "sumdb.test"}) {
    EXPECT_EQ(harness.tier(name).times_asked(), 0u) << name << " was asked";
  }
}

// Offline serving needs no tier, so a server whose only tier is "off" is ready too.
TEST(offline, ready_without_a_usable_tier) {
  EXPECT_TRUE(offline_harness("off").under_test().ready());
  scripted_harness online({}, public_tiers("off"));
  EXPECT_FALSE(online.under_test().ready());
}

// ---- Answered before the parse -----------------------------------------------------------

// Writes `body` under `key` as given, with no parse: how a key the resolver never writes would
// look if one were there.
void seed_key(cache::cache_store& store, const std::string& key, cache::entry_kind kind,
              std::int64_t stored_at_ms, const std::string& body) {
  auto created = store.create(key);
  ASSERT_TRUE(created) << key;
  ASSERT_TRUE((*created)->append(body)) << key;
  cache::entry_meta meta;
  meta.kind = kind;
  meta.stored_at_ms = stored_at_ms;
  meta.tier = "a.test";
  ASSERT_TRUE((*created)->commit(meta)) << key;
}

// A warm .info, .mod or .zip looked up by its target as it came is answered as the full parse
// answers it: the same status, headers, body and cache result, and no tier asked.
TEST(answered_before_the_parse, a_stored_info_or_mod_is_answered_as_after_the_parse) {
  scripted_harness harness({{"a.test", tier_script::ok("from the tier\n")}},
                           public_tiers("https://a.test"));
  const std::string mod_target = "/example.com/!hello/@v/v1.2.0-!r!c1.mod";
  const std::string zip_target = "/example.com/hello/@v/v1.2.0.zip";
  seed_key(harness.store(), info_target, cache::entry_kind::immutable, 1, info_body);
  seed_key(harness.store(), mod_target, cache::entry_kind::immutable, 1,
           "module example.com/Hello\n");
  seed_key(harness.store(), zip_target, cache::entry_kind::immutable, 1, "PK zip bytes");
  for (int round = 0; round < 2; ++round) {
    auto info = harness.get(info_target);
    EXPECT_EQ(info.status, 200) << info.body;
    EXPECT_EQ(info.body, info_body);
    EXPECT_EQ(info.content_type, "application/json");
    EXPECT_EQ(info.cache_control, "public, max-age=604800, immutable");
    EXPECT_EQ(info.cache_result, "hit");
    auto mod = harness.get(mod_target);
    EXPECT_EQ(mod.status, 200) << mod.body;
    EXPECT_EQ(mod.body, "module example.com/Hello\n");
    EXPECT_EQ(mod.content_type, "text/plain; charset=utf-8");
    EXPECT_EQ(mod.cache_result, "hit");
    auto zip = harness.get(zip_target);
    EXPECT_EQ(zip.status, 200) << zip.body;
    EXPECT_EQ(zip.body, "PK zip bytes");
    EXPECT_EQ(zip.content_type, "application/zip");
    EXPECT_EQ(zip.cache_result, "hit");
    // Percent-encoded, the same file goes the whole way and finds the same entry.
    auto encoded = harness.get("/example.com/hello/@v/v1.2.0%2Einfo");
    EXPECT_EQ(encoded.status, 200) << encoded.body;
    EXPECT_EQ(encoded.body, info_body);
    EXPECT_EQ(encoded.cache_result, "hit");
  }
  EXPECT_EQ(harness.tier("a.test").times_asked(), 0u);
}

// Only an immutable entry is answered before the parse: an expired revision query's .info and
// an expired not-found go the whole way, and the tier is asked about them again.
TEST(answered_before_the_parse, an_entry_that_expires_goes_the_whole_way) {
  scripted_harness harness({{"a.test", tier_script::not_found()}}, public_tiers("https://a.test"));
  const std::string query_target = "/example.com/hello/@v/master.info";
  const std::string gone_target = "/example.com/hello/@v/v1.3.0.mod";
  seed_key(harness.store(), query_target, cache::entry_kind::expiring, 1, "old answer\n");
  seed_key(harness.store(), gone_target, cache::entry_kind::not_found, 1, "not found: old\n");
  for (const auto& target : {query_target, gone_target}) {
    auto got = harness.get(target);
    EXPECT_NE(got.status, 0) << target;
    EXPECT_NE(got.cache_result, "hit") << target;
  }
  EXPECT_EQ(harness.tier("a.test").times_asked(), 2u);
}

// A target the parse refuses, or would decode to another key, is never answered from an entry
// stored under its raw spelling (the resolver writes no such keys; these are put there by
// hand): upper case, a percent-encoding, a query, a checksum database path.
TEST(answered_before_the_parse, a_key_the_parse_would_not_write_is_never_answered_verbatim) {
  scripted_harness harness({{"a.test", tier_script::not_found()}}, public_tiers("https://a.test"));
  const std::vector<std::string> targets = {
      "/example.com/Hello/@v/v1.2.0.info",
      "/example.com/hello/@v/v1.2.0%2Eprerelease.mod",
      "/example.com/hello/@v/v1.2.0.info?x=.info",
      "/sumdb/sum.golang.org/lookup/example.com/hello/@v/v1.2.0.info",
  };
  for (const auto& target : targets) {
    seed_key(harness.store(), target, cache::entry_kind::immutable, 1, "planted\n");
  }
  for (const auto& target : targets) {
    auto got = harness.get(target);
    EXPECT_EQ(got.status, 404) << target << ": " << got.body;
    EXPECT_NE(got.body, "planted\n") << target;
  }
}

}  // namespace
}  // namespace gomodproxy::resolver
