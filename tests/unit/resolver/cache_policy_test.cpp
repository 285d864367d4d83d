// The resolver's cache policy, decision by decision, through the tier seam on the in-memory store
// with a clock the test moves: which answers are kept forever and which for list_ttl, the
// Cache-Control each carries, the negative cache, stale-if-error, and what each tier answer makes
// the walk do (tier_walk_test.cpp has the walk's own bookkeeping; this is the verdict the resolver
// gives an answer, and what it remembers of it).
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "cache/cache_store.hpp"
#include "monitor/metrics.hpp"
#include "protocol/request.hpp"
#include "resolver/resolver.hpp"
#include "sumdb/signed_note.hpp"
#include "tests/support/cpp/metrics_text.hpp"
#include "tests/unit/resolver/capturing_writer.hpp"
#include "tests/unit/resolver/scripted_tier.hpp"

namespace gomodproxy::resolver {
namespace {
using namespace std::chrono_literals;
using fill_testing::answer;
using fill_testing::backing;
using fill_testing::scripted_harness;
using fill_testing::testdata;
using fill_testing::tier_script;
using fill_testing::tiers;

const std::string info_target = "/example.com/hello/@v/v1.2.0.info";
const std::string list_target = "/example.com/hello/@v/list";
const std::string latest_target = "/example.com/hello/@latest";
const std::string query_target = "/example.com/hello/@v/master.info";
const std::string info_body = R"({"Version":"v1.2.0","Time":"2024-01-01T00:00:00Z"})";
const std::string newer_info_body = R"({"Version":"v1.3.0","Time":"2025-01-01T00:00:00Z"})";

// Distinct from each other and from the defaults, so a decision that reads the wrong one fails.
constexpr auto list_ttl = 120s;
constexpr auto negative_ttl = 45s;
const std::string expiring_cache_control = "public, max-age=120";
const std::string immutable_cache_control = "public, max-age=604800, immutable";

const std::string sumdb_key_text =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

// Public tiers `list`, the TTLs above, and sum.golang.org proxied through sumdb.test (its tiles
// need no signature, so a scripted body serves).
std::function<void(resolver_options&)> policy_options(const std::string& list,
                                                      bool all_failed_502 = false,
                                                      monitor::metrics* metrics = nullptr) {
  return [=](resolver_options& options) {
    options.tiers = tiers(list);
    options.list_ttl = list_ttl;
    options.negative_ttl = negative_ttl;
    options.all_failed_502 = all_failed_502;
    options.metrics = metrics;
    auto key = sumdb::parse_verifier_key(sumdb_key_text);
    if (!key) throw std::runtime_error("sumdb key: " + key.error().message());
    options.sumdbs.push_back({"sum.golang.org", tiers("https://sumdb.test"), *key});
  };
}

// The kind of the entry the resolver keeps for `target`, or nullopt when it keeps none.
std::optional<cache::entry_kind> stored_kind(cache::cache_store& store, const std::string& target) {
  auto parsed = protocol::parse_module_request(target);
  if (!parsed) return std::nullopt;
  auto found = store.stat(parsed->cache_key);
  if (!found || !*found) return std::nullopt;
  return (*found)->kind;
}

using test::value_of;

// ---- Kept forever or for list_ttl, and the Cache-Control that says so -----------------------

// A version's .info, .mod and .zip (and a checksum database tile) never change: kept forever
// and served "immutable". A list, @latest and a query move: kept for list_ttl (fresh while
// younger, asked again from the moment it is that old) and served with that max-age.
TEST(cache_policy, each_kind_is_kept_forever_or_for_the_list_ttl) {
  struct row {
    std::string target;
    std::string body;
    cache::entry_kind kind;
    std::string content_type;
  };
  const std::vector<row> table = {
      {info_target, info_body, cache::entry_kind::immutable, "application/json"},
      {"/example.com/hello/@v/v1.2.0.mod", testdata("hello-v1.2.0.mod"),
       cache::entry_kind::immutable, "text/plain; charset=utf-8"},
      {"/example.com/hello/@v/v1.2.0.zip", testdata("hello-v1.2.0.zip"),
       cache::entry_kind::immutable, "application/zip"},
      {"/sumdb/sum.golang.org/tile/8/0/000", std::string(8192, 'h'), cache::entry_kind::immutable,
       "application/octet-stream"},
      {list_target, "v1.0.0\nv1.2.0\n", cache::entry_kind::expiring, "text/plain; charset=utf-8"},
      {latest_target, info_body, cache::entry_kind::expiring, "application/json"},
      {query_target, info_body, cache::entry_kind::expiring, "application/json"},
  };
  for (const auto& expected : table) {
    SCOPED_TRACE(expected.target);
    ASSERT_FALSE(expected.body.empty());
    scripted_harness harness({{"a.test", tier_script::ok(expected.body)},
                              {"sumdb.test", tier_script::ok(expected.body)}},
                             policy_options("https://a.test"), backing::memory);
    auto asked = [&] {
      return harness.tier("a.test").times_asked() + harness.tier("sumdb.test").times_asked();
    };
    const bool immutable = expected.kind == cache::entry_kind::immutable;
    const std::string cache_control = immutable ? immutable_cache_control : expiring_cache_control;

    const auto filled = harness.get(expected.target);
    EXPECT_EQ(filled.status, 200) << filled.body;
    EXPECT_EQ(filled.body, expected.body);
    EXPECT_EQ(filled.cache_control, cache_control);
    EXPECT_EQ(filled.content_type, expected.content_type);
    EXPECT_EQ(filled.cache_result, "miss");
    EXPECT_EQ(stored_kind(harness.store(), expected.target), expected.kind);

    // Just short of list_ttl: every kind is a hit, with the same header as the fill's answer.
    harness.clock().advance(list_ttl - 1ms);
    const auto young = harness.get(expected.target);
    EXPECT_EQ(young.status, 200);
    EXPECT_EQ(young.body, expected.body);
    EXPECT_EQ(young.cache_control, cache_control);
    EXPECT_EQ(young.content_type, expected.content_type);
    EXPECT_EQ(young.cache_result, "hit");
    EXPECT_EQ(asked(), 1u);

    // Exactly list_ttl old: the moving kinds are asked again.
    harness.clock().advance(1ms);
    const auto due = harness.get(expected.target);
    EXPECT_EQ(due.status, 200);
    EXPECT_EQ(due.cache_result, immutable ? "hit" : "miss");
    EXPECT_EQ(asked(), immutable ? 1u : 2u);

    // A year on, an immutable entry is still never asked about.
    harness.clock().advance(std::chrono::hours(24 * 365));
    const auto old = harness.get(expected.target);
    EXPECT_EQ(old.status, 200);
    EXPECT_EQ(asked(), immutable ? 1u : 3u);
  }
}

// A refreshed list replaces the old one and is young again: the next list_ttl is counted from
// the refresh, not from the first fill.
TEST(cache_policy, a_refresh_replaces_the_entry_and_restarts_its_ttl) {
  for (const auto& target : {list_target, latest_target, query_target}) {
    SCOPED_TRACE(target);
    const bool list = target == list_target;
    scripted_harness harness({{"a.test", tier_script::ok(list ? "v1.2.0\n" : info_body)}},
                             policy_options("https://a.test"), backing::memory);
    EXPECT_EQ(harness.get(target).status, 200);
    const std::string newer = list ? "v1.2.0\nv1.3.0\n" : newer_info_body;
    harness.tier("a.test").answer_with(tier_script::ok(newer));
    harness.clock().advance(list_ttl);
    const auto refreshed = harness.get(target);
    EXPECT_EQ(refreshed.status, 200) << refreshed.body;
    EXPECT_EQ(refreshed.body, newer);
    EXPECT_EQ(refreshed.cache_result, "miss");
    harness.clock().advance(list_ttl - 1ms);
    const auto hit = harness.get(target);
    EXPECT_EQ(hit.body, newer);
    EXPECT_EQ(hit.cache_result, "hit");
    EXPECT_EQ(harness.tier("a.test").times_asked(), 2u);
  }
}

// ---- The negative cache -------------------------------------------------------------------

// Every tier said not found (404 or 410 alike: the tier reports both as not found): the answer,
// every tier's line included, is kept for negative_ttl, served 404 "no-store" without asking a
// tier while younger, and asked about again from the moment it is that old.
TEST(negative_cache, a_not_found_from_every_tier_is_remembered_for_the_negative_ttl) {
  for (const auto& target : {info_target, std::string("/example.com/hello/@v/v1.2.0.mod"),
                             std::string("/example.com/hello/@v/v1.2.0.zip"), list_target}) {
    SCOPED_TRACE(target);
    scripted_harness harness(
        {{"a.test", tier_script::not_found("410")}, {"direct", tier_script::not_found("no tag")}},
        policy_options("https://a.test|direct"), backing::memory);
    auto asked_each = [&](std::size_t times) {
      EXPECT_EQ(harness.tier("a.test").times_asked(), times);
      EXPECT_EQ(harness.tier("direct").times_asked(), times);
    };
    const auto first = harness.get(target);
    EXPECT_EQ(first.status, 404);
    EXPECT_EQ(first.cache_control, "no-store");
    EXPECT_TRUE(first.body.ends_with("\na.test: 410\ndirect: no tag\n")) << first.body;
    EXPECT_EQ(stored_kind(harness.store(), target), cache::entry_kind::not_found);
    asked_each(1);

    harness.clock().advance(negative_ttl - 1ms);
    const auto remembered = harness.get(target);
    EXPECT_EQ(remembered.status, 404);
    EXPECT_EQ(remembered.body, first.body);
    EXPECT_EQ(remembered.cache_control, "no-store");
    EXPECT_EQ(remembered.cache_result, "hit");
    asked_each(1);

    harness.clock().advance(1ms);
    const auto asked_again = harness.get(target);
    EXPECT_EQ(asked_again.status, 404);
    EXPECT_EQ(asked_again.cache_result, "miss");
    asked_each(2);
  }
}

// Only an absence every tier agrees on is remembered: one tier failing (it may answer next
// time) leaves nothing in the cache, and all_failed_502 turns that answer, never a plain
// not-found, into a 502.
TEST(negative_cache, nothing_is_remembered_when_a_tier_failed) {
  struct row {
    tier_script a;
    tier_script b;
    bool all_failed_502;
    int status;
    bool remembered;
  };
  const std::vector<row> table = {
      {tier_script::not_found(), tier_script::not_found(), false, 404, true},
      {tier_script::not_found(), tier_script::not_found(), true, 404, true},
      {tier_script::not_found(), tier_script::error(), false, 404, false},
      {tier_script::not_found(), tier_script::error(), true, 502, false},
      {tier_script::not_found(), tier_script::timeout(), true, 502, false},
      {tier_script::error(), tier_script::not_found(), false, 404, false},
      {tier_script::timeout(), tier_script::not_found(), true, 502, false},
  };
  for (const auto& expected : table) {
    SCOPED_TRACE("a: " + expected.a.reason + ", b: " + expected.b.reason +
                 (expected.all_failed_502 ? ", all_failed_502" : ""));
    scripted_harness harness(
        {{"a.test", expected.a}, {"b.test", expected.b}},
        policy_options("https://a.test|https://b.test", expected.all_failed_502), backing::memory);
    const auto first = harness.get(info_target);
    EXPECT_EQ(first.status, expected.status);
    EXPECT_EQ(first.cache_control, "no-store");
    EXPECT_EQ(first.body, "not found: example.com/hello@v1.2.0\na.test: " + expected.a.reason +
                              "\nb.test: " + expected.b.reason + "\n");
    EXPECT_EQ(stored_kind(harness.store(), info_target).has_value(), expected.remembered);
    const auto second = harness.get(info_target);
    EXPECT_EQ(second.status, expected.status);
    EXPECT_EQ(harness.tier("b.test").times_asked(), expected.remembered ? 1u : 2u);
  }
}

// A list or @latest that every tier now says is not there is not forgotten: the old answer is
// served stale and kept, and the tiers are asked again next time.
TEST(negative_cache, a_not_found_never_replaces_a_list_or_latest_once_served) {
  for (const auto& target : {list_target, latest_target}) {
    SCOPED_TRACE(target);
    const std::string body = target == list_target ? "v1.2.0\n" : info_body;
    scripted_harness harness({{"a.test", tier_script::ok(body)}}, policy_options("https://a.test"),
                             backing::memory);
    EXPECT_EQ(harness.get(target).status, 200);
    harness.tier("a.test").answer_with(tier_script::not_found());
    harness.clock().advance(list_ttl);
    for (std::size_t round = 1; round <= 2; ++round) {
      const auto got = harness.get(target);
      EXPECT_EQ(got.status, 200) << got.body;
      EXPECT_EQ(got.body, body);
      EXPECT_EQ(got.cache_result, "stale");
      EXPECT_EQ(stored_kind(harness.store(), target), cache::entry_kind::expiring);
      // @latest, lacking at the tier, is also worked out from the list, which is not there.
      EXPECT_EQ(harness.tier("a.test").times_asked(), 1 + round * (target == list_target ? 1 : 2));
    }
  }
}

// ---- Stale-if-error -----------------------------------------------------------------------

// An expired list, @latest or query whose refresh fails on every tier is served as it was,
// noted "stale" and counted in gomodproxy_stale_served_total; it is not stamped anew, so the
// next request tries the refresh again, and the first that succeeds replaces it.
TEST(stale_if_error, an_expired_entry_is_served_stale_when_every_tier_fails) {
  struct row {
    std::string target;
    std::string kind_label;
  };
  const std::vector<row> table = {
      {list_target, "list"}, {latest_target, "latest"}, {query_target, "query"}};
  for (const auto& expected : table) {
    for (const auto& failure : {tier_script::error(), tier_script::timeout()}) {
      SCOPED_TRACE(expected.target + ", " + failure.reason);
      monitor::metrics metrics(monitor::metrics_layout{{"a.test", "b.test"}, {{0, 1}}});
      const std::string stale_series =
          "gomodproxy_stale_served_total{kind=\"" + expected.kind_label + "\"}";
      const std::string body = expected.target == list_target ? "v1.2.0\n" : info_body;
      scripted_harness harness({{"a.test", tier_script::ok(body)}, {"b.test", failure}},
                               policy_options("https://a.test|https://b.test", true, &metrics),
                               backing::memory);
      EXPECT_EQ(harness.get(expected.target).status, 200);
      EXPECT_EQ(value_of(metrics.serialize(), stale_series), 0);

      harness.tier("a.test").answer_with(failure);
      harness.clock().advance(list_ttl);
      for (std::size_t round = 1; round <= 2; ++round) {
        const auto got = harness.get(expected.target);
        EXPECT_EQ(got.status, 200) << got.body;
        EXPECT_EQ(got.body, body);
        EXPECT_EQ(got.cache_result, "stale");
        EXPECT_EQ(got.cache_control, expiring_cache_control);
        EXPECT_EQ(value_of(metrics.serialize(), stale_series), static_cast<double>(round));
        EXPECT_EQ(harness.tier("a.test").times_asked(), 1 + round);
        EXPECT_EQ(harness.tier("b.test").times_asked(), round) << "not every tier was asked";
      }

      const std::string newer = expected.target == list_target ? "v1.3.0\n" : newer_info_body;
      harness.tier("b.test").answer_with(tier_script::ok(newer));
      const auto refreshed = harness.get(expected.target);
      EXPECT_EQ(refreshed.status, 200);
      EXPECT_EQ(refreshed.body, newer);
      EXPECT_EQ(refreshed.cache_result, "miss");
      EXPECT_EQ(value_of(metrics.serialize(), stale_series), 2);
    }
  }
}

// With nothing stale to fall back on, every tier failing is a 404 "no-store" naming each
// tier's failure, or a 502 with all_failed_502; nothing is cached, so the next request asks
// again.
TEST(stale_if_error, without_a_stale_entry_every_tier_failing_is_404_or_502) {
  for (const auto& target : {list_target, latest_target, query_target, info_target}) {
    for (const bool all_failed_502 : {false, true}) {
      for (const auto& failure : {tier_script::error(), tier_script::timeout()}) {
        SCOPED_TRACE(target + ", " + failure.reason + (all_failed_502 ? ", all_failed_502" : ""));
        scripted_harness harness({{"a.test", failure}, {"b.test", failure}},
                                 policy_options("https://a.test|https://b.test", all_failed_502),
                                 backing::memory);
        for (std::size_t round = 1; round <= 2; ++round) {
          const auto got = harness.get(target);
          EXPECT_EQ(got.status, all_failed_502 ? 502 : 404);
          EXPECT_EQ(got.cache_control, "no-store");
          EXPECT_TRUE(got.body.ends_with("\na.test: " + failure.reason +
                                         "\nb.test: " + failure.reason + "\n"))
              << got.body;
          EXPECT_FALSE(stored_kind(harness.store(), target));
          EXPECT_EQ(harness.tier("b.test").times_asked(), round);
        }
      }
    }
  }
}

// ---- The verdict on each attempt ----------------------------------------------------------

// What each answer of the first tier of "A,B" makes the walk do. A valid body wins; a not-found
// and a body that fails its check move on (the latter whatever the separator); a failure ends a
// ',' walk. When B then says not found, only a walk whose every answer was a not-found leaves a
// not-found to remember: an invalid body counts as a tier failing.
// (At this seam a 5xx is an error and a 410 a not-found: http_tier maps the statuses.)
TEST(attempt_verdict, each_answer_decides_whether_the_walk_goes_on_and_what_is_remembered) {
  const std::string b_body = R"({"Version":"v1.2.0","Time":"2020-01-01T00:00:00Z"})";
  struct row {
    tier_script a;
    bool b_asked;
    int status;        ///< with B answering b_body
    std::string body;  ///< with B answering b_body
    /// With B answering not found: the line of the 404 about A ("": A's answer won), and
    /// whether that 404 is remembered.
    std::string a_line;
    bool remembered;
  };
  const std::string not_found_line = "not found: example.com/hello@v1.2.0\n";
  const std::vector<row> table = {
      {tier_script::ok(info_body), false, 200, info_body, "", false},
      {tier_script::not_found("404"), true, 200, b_body, "a.test: 404\n", true},
      {tier_script::not_found("410"), true, 200, b_body, "a.test: 410\n", true},
      {tier_script::error("503 Service Unavailable"), false, 404,
       not_found_line + "a.test: 503 Service Unavailable\n", "a.test: 503 Service Unavailable\n",
       false},
      {tier_script::timeout(), false, 404,
       not_found_line + "a.test: timeout after 10s (first byte)\n",
       "a.test: timeout after 10s (first byte)\n", false},
      {tier_script::ok(R"({"Version":"v9.9.9","Time":"2024-01-01T00:00:00Z"})"), true, 200, b_body,
       "a.test: invalid answer: info is for version v9.9.9 instead of v1.2.0\n", false},
      {tier_script::ok("not json"), true, 200, b_body,
       "a.test: invalid answer: info is not a JSON object\n", false},
  };
  for (const auto& expected : table) {
    SCOPED_TRACE("a.test: " + (expected.a.what == tier_script::answer::ok ? "200 " + expected.a.body
                                                                          : expected.a.reason));
    {
      scripted_harness harness({{"a.test", expected.a}, {"b.test", tier_script::ok(b_body)}},
                               policy_options("https://a.test,https://b.test"), backing::memory);
      const auto got = harness.get(info_target);
      EXPECT_EQ(got.status, expected.status);
      EXPECT_EQ(got.body, expected.body);
      EXPECT_EQ(harness.tier("b.test").times_asked(), expected.b_asked ? 1u : 0u);
    }
    if (expected.a_line.empty()) continue;
    scripted_harness harness({{"a.test", expected.a}, {"b.test", tier_script::not_found()}},
                             policy_options("https://a.test,https://b.test"), backing::memory);
    const auto got = harness.get(info_target);
    EXPECT_EQ(got.status, 404);
    EXPECT_EQ(got.body,
              not_found_line + expected.a_line + (expected.b_asked ? "b.test: 404\n" : ""));
    EXPECT_EQ(stored_kind(harness.store(), info_target) == cache::entry_kind::not_found,
              expected.remembered);
  }
}

}  // namespace
}  // namespace gomodproxy::resolver
