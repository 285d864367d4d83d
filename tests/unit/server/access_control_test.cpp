// Client and admin tokens: the auth file's grammar, Basic and Bearer credentials, tokens that are
// wrong, a byte short or a byte long, the class of each path, and a reload that fails keeping the
// old tokens.
#include "server/access_control.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cpp/temp_dir.hpp"

namespace gomodproxy::server {
namespace {

const std::string alice = "alice-0123456789abcdef";
const std::string bob = "bob-fedcba9876543210";
const std::string admin = "admin-token-0123456789";

// RFC 4648 base64, written out here so the test does not share the decoder it checks.
std::string base64(std::string_view bytes) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (bytes.size() - i == 1) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (bytes.size() - i == 2) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string basic(std::string_view user, std::string_view password) {
  return "Basic " + base64(std::string(user) + ":" + std::string(password));
}

using test::temp_dir;

std::unique_ptr<access_control> load_ok(const std::string& auth_file,
                                        const std::string& admin_token) {
  auto loaded = access_control::load(auth_file, admin_token);
  if (!loaded) {
    ADD_FAILURE() << "unexpected problem: " << loaded.error().detail;
    return nullptr;
  }
  return std::move(*loaded);
}

// ---- The auth file ---------------------------------------------------------------------------

TEST(parse_auth_file, names_comments_blank_lines_and_spaces) {
  const std::string content = "# team tokens\n\n  alice:" + alice + "  \r\n\t" + bob +
                              "\n# bob's is unnamed\nci.build-1:" + admin + "\n";
  auto parsed = parse_auth_file(content);
  ASSERT_TRUE(parsed) << parsed.error().detail;
  const auto& tokens = *parsed;
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0].name, "alice");
  EXPECT_EQ(tokens[0].digest, token_digest(alice));
  EXPECT_EQ(tokens[1].name, "token-4");
  EXPECT_EQ(tokens[1].digest, token_digest(bob));
  EXPECT_EQ(tokens[2].name, "ci.build-1");
}

TEST(parse_auth_file, a_token_may_hold_a_colon_after_its_name) {
  auto parsed = parse_auth_file("n:" + alice + ":x\n");
  ASSERT_TRUE(parsed) << parsed.error().detail;
  EXPECT_EQ((*parsed)[0].digest, token_digest(alice + ":x"));
}

TEST(parse_auth_file, refuses_with_the_line_number_and_never_the_content) {
  struct bad_case {
    std::string name;
    std::string content;
    std::string expected;  ///< the start of the problem
  };
  const std::string secret_short = "short-secret";  // 12 characters
  const std::vector<bad_case> cases = {
      {"short token", "# c\n" + secret_short + "\n", "line 2: the token is shorter than 16"},
      {"15 characters", std::string(15, 'k') + "\n", "line 1: the token is shorter than 16"},
      {"too long", std::string(max_token_length + 1, 'k'), "line 1: the token is longer"},
      {"space inside", "alice:abc def ghi jkl mno\n", "line 1: the token has a character"},
      {"control byte", "alice:" + alice + "\x01\n", "line 1: the token has a character"},
      {"non-ASCII", "alice:" + alice + "\xc3\xa9\n", "line 1: the token has a character"},
      {"empty name", ":" + alice + "\n", "line 1: the name before ':'"},
      {"bad name", "al ice:" + alice + "\n", "line 1: the name before ':'"},
      {"long name", std::string(65, 'n') + ":" + alice + "\n", "line 1: the name before ':'"},
      {"name twice", "a:" + alice + "\na:" + bob + "\n",
       "line 2: the name is already used on line 1"},
      {"token twice", "a:" + alice + "\n\nb:" + alice + "\n",
       "line 3: the token is already listed on line 1"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto parsed = parse_auth_file(c.content);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().code, errc::invalid_request);
    const auto& problem = parsed.error().detail;
    EXPECT_EQ(problem.rfind(c.expected, 0), 0u) << problem;
    EXPECT_EQ(problem.find(secret_short), std::string::npos) << problem;
    EXPECT_EQ(problem.find(alice), std::string::npos) << problem;
    EXPECT_EQ(problem.find(bob), std::string::npos) << problem;
    EXPECT_EQ(problem.find("kkkk"), std::string::npos) << problem;
  }
}

TEST(access_control, load_names_the_file_and_line_but_not_the_token) {
  temp_dir dir;
  const auto file = dir.write("tokens", "alice:" + alice + "\nbob:tooshort1\n");
  auto loaded = access_control::load(file, "");
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, errc::invalid_request);
  const auto& problem = loaded.error().detail;
  EXPECT_EQ(problem.rfind("auth_file: \"" + file + "\" line 2: the token is shorter", 0), 0u)
      << problem;
  EXPECT_EQ(problem.find("tooshort1"), std::string::npos);
  EXPECT_EQ(problem.find(alice), std::string::npos);

  auto missing =
      access_control::load((std::filesystem::path(file).parent_path() / "nope").string(), "");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, boost::system::errc::no_such_file_or_directory)
      << missing.error().code.message();
  EXPECT_NE(missing.error().detail.find("cannot read it"), std::string::npos);

  auto empty = access_control::load(dir.write("empty", "# nothing yet\n\n"), "");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, errc::invalid_request);
  EXPECT_NE(empty.error().detail.find("holds no token"), std::string::npos);

  auto weak_admin = access_control::load("", "weak-admin");
  ASSERT_FALSE(weak_admin);
  EXPECT_EQ(weak_admin.error().code, errc::invalid_request);
  EXPECT_EQ(weak_admin.error().detail.rfind("admin_token: the value: the token is", 0), 0u);
  EXPECT_EQ(weak_admin.error().detail.find("weak-admin"), std::string::npos);
}

TEST(check_token_shape, each_shape_refused_is_an_invalid_request_saying_what_without_quoting_it) {
  EXPECT_TRUE(check_token_shape(std::string(min_token_length, 'a')));
  EXPECT_TRUE(check_token_shape(std::string(max_token_length, 'a')));
  EXPECT_TRUE(check_token_shape(alice));
  struct row {
    std::string token;
    std::string detail;
  };
  for (const auto& [token, detail] : std::vector<row>{
           {std::string(min_token_length - 1, 'a'), "the token is shorter than 16 characters"},
           {std::string(max_token_length + 1, 'a'), "the token is longer than 1024 characters"},
           {"secret-with space-inside",
            "the token has a character other than printable ASCII without spaces"},
           {"secret-with-tab\t-inside",
            "the token has a character other than printable ASCII without spaces"},
           {"secret-with-\x7f-delete",
            "the token has a character other than printable ASCII without spaces"},
       }) {
    const auto shape = check_token_shape(token);
    ASSERT_FALSE(shape) << token;
    EXPECT_EQ(shape.error().code, errc::invalid_request) << token;
    EXPECT_EQ(shape.error().detail, detail) << token;
  }
}

// ---- Credentials -----------------------------------------------------------------------------

TEST(presented_token, basic_and_bearer_in_any_case_and_nothing_else) {
  EXPECT_EQ(presented_token(basic("gomodproxy", alice)), alice);
  EXPECT_EQ(presented_token(basic("anyone at all", alice)), alice);
  EXPECT_EQ(presented_token(basic("", alice)), alice);
  EXPECT_EQ(presented_token("basic " + base64("u:" + alice)), alice);
  EXPECT_EQ(presented_token("BASIC   " + base64("u:" + alice) + " "), alice);
  EXPECT_EQ(presented_token("Basic " + base64("u:a:b")), "a:b");  // password holds a colon
  EXPECT_EQ(presented_token("Bearer " + alice), alice);
  EXPECT_EQ(presented_token("bearer " + alice), alice);
  // Every padding length decodes.
  for (std::size_t extra = 0; extra < 3; ++extra) {
    const std::string token = alice + std::string(extra, 'z');
    EXPECT_EQ(presented_token(basic("u", token)), token) << extra;
  }

  EXPECT_EQ(presented_token(""), std::nullopt);
  EXPECT_EQ(presented_token("Bearer"), std::nullopt);
  EXPECT_EQ(presented_token("Bearer "), std::nullopt);
  EXPECT_EQ(presented_token("Digest " + alice), std::nullopt);
  EXPECT_EQ(presented_token("Basic " + base64(alice)), std::nullopt);  // no colon
  EXPECT_EQ(presented_token("Basic !!!!"), std::nullopt);
  EXPECT_EQ(presented_token("Basic " + base64("u:" + alice).substr(1)), std::nullopt);
  EXPECT_EQ(presented_token("Basic QQ==QQ=="), std::nullopt);  // data after padding
  EXPECT_EQ(presented_token(alice), std::nullopt);
}

// ---- Decisions -------------------------------------------------------------------------------

TEST(classify, open_admin_and_client_paths) {
  EXPECT_EQ(classify("/healthz"), path_class::open);
  EXPECT_EQ(classify("/readyz"), path_class::open);
  EXPECT_EQ(classify("/bootstrap.sh"), path_class::open);
  EXPECT_EQ(classify("/metrics"), path_class::admin);
  EXPECT_EQ(classify("/status"), path_class::admin);
  EXPECT_EQ(classify("/status.json"), path_class::admin);
  EXPECT_EQ(classify("/"), path_class::client);
  EXPECT_EQ(classify("/healthz/"), path_class::client);
  EXPECT_EQ(classify("/metrics.json"), path_class::client);
  EXPECT_EQ(classify("/golang.org/x/mod/@v/list"), path_class::client);
  EXPECT_EQ(classify("/sumdb/sum.golang.org/supported"), path_class::client);
  EXPECT_EQ(classify("/admin/cache/stats"), path_class::admin);
  EXPECT_EQ(classify("/admin/cache/rm"), path_class::admin);
  EXPECT_EQ(classify("/admin/anything/yet/to/come"), path_class::admin);
  EXPECT_EQ(classify("/admin"), path_class::client);  // not under /admin/: a module path
}

struct decision_case {
  std::string name;
  std::string path;
  std::string authorization;
  bool allowed;
  std::string logged_name;
  refusal reason = refusal::missing;
};

void expect_decisions(const access_control& control, const std::vector<decision_case>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name + " " + c.path);
    const auto decision = control.check(c.path, c.authorization);
    EXPECT_EQ(decision.allowed, c.allowed);
    EXPECT_EQ(decision.name, c.logged_name);
    if (!c.allowed) {
      EXPECT_EQ(decision.reason, c.reason);
    }
  }
}

TEST(access_control, client_tokens_only) {
  temp_dir dir;
  auto control = load_ok(dir.write("tokens", "alice:" + alice + "\n" + bob + "\n"), "");
  ASSERT_TRUE(control);
  EXPECT_TRUE(control->enabled());
  const std::string mod = "/example.com/m/@v/v1.0.0.mod";
  expect_decisions(
      *control,
      {
          {"no credential", mod, "", false, "-", refusal::missing},
          {"other scheme", mod, "Digest " + alice, false, "-", refusal::missing},
          {"basic alice", mod, basic("gomodproxy", alice), true, "alice"},
          {"bearer bob", mod, "Bearer " + bob, true, "token-2"},
          {"wrong", mod, "Bearer " + admin, false, "-", refusal::invalid},
          {"a byte short", mod, basic("u", alice.substr(0, alice.size() - 1)), false, "-",
           refusal::invalid},
          {"a byte long", mod, basic("u", alice + "0"), false, "-", refusal::invalid},
          {"other case", mod, "Bearer ALICE-0123456789ABCDEF", false, "-", refusal::invalid},
          {"user name is not the token", mod, basic(alice, "x"), false, "-", refusal::invalid},
          {"healthz open", "/healthz", "", true, "-"},
          {"readyz open", "/readyz", "", true, "-"},
          {"bootstrap open", "/bootstrap.sh", "", true, "-"},
          // Without an admin token the client tokens guard the admin pages.
          {"metrics without", "/metrics", "", false, "-", refusal::missing},
          {"metrics with a client token", "/metrics", "Bearer " + alice, true, "alice"},
          {"status with a client token", "/status.json", basic("u", bob), true, "token-2"},
      });
}

TEST(access_control, admin_token_only_leaves_client_paths_open) {
  auto control = load_ok("", admin);
  ASSERT_TRUE(control);
  const std::string list = "/example.com/m/@v/list";
  expect_decisions(
      *control, {
                    {"client path open", list, "", true, "-"},
                    {"metrics closed", "/metrics", "", false, "-", refusal::missing},
                    {"status wrong", "/status", "Bearer " + alice, false, "-", refusal::invalid},
                    {"status admin", "/status", "Bearer " + admin, true, "admin"},
                    {"metrics admin basic", "/metrics", basic("prometheus", admin), true, "admin"},
                    {"healthz open", "/healthz", "", true, "-"},
                });
}

TEST(access_control, both_keep_client_tokens_off_admin_paths) {
  temp_dir dir;
  const auto admin_file = dir.write("admin", "  " + admin + "  \nignored second line\n");
  auto control = load_ok(dir.write("tokens", "alice:" + alice + "\n"), "@" + admin_file);
  ASSERT_TRUE(control);
  const std::string zip = "/example.com/m/@v/v1.0.0.zip";
  expect_decisions(
      *control,
      {
          {"client", zip, "Bearer " + alice, true, "alice"},
          {"admin opens client paths", zip, "Bearer " + admin, true, "admin"},
          {"no token", zip, "", false, "-", refusal::missing},
          {"client on admin path", "/metrics", "Bearer " + alice, false, "alice", refusal::invalid},
          {"admin on admin path", "/metrics", "Bearer " + admin, true, "admin"},
          {"readyz open", "/readyz", "", true, "-"},
      });
}

TEST(access_control, nothing_set_allows_everything) {
  auto control = load_ok("", "");
  ASSERT_TRUE(control);
  EXPECT_FALSE(control->enabled());
  EXPECT_TRUE(control->check("/metrics", "").allowed);
  EXPECT_TRUE(control->check("/example.com/m/@v/list", "").allowed);
}

TEST(access_control, reload_takes_new_tokens_and_keeps_old_ones_on_a_bad_file) {
  temp_dir dir;
  const auto file = dir.write("tokens", "alice:" + alice + "\n");
  auto control = load_ok(file, "");
  ASSERT_TRUE(control);
  const std::string path = "/example.com/m/@v/list";

  dir.write("tokens", "bob:" + bob + "\n");
  auto reloaded = control->reload();
  ASSERT_TRUE(reloaded) << reloaded.error().detail;
  EXPECT_EQ(*reloaded, 1u);
  EXPECT_FALSE(control->check(path, "Bearer " + alice).allowed);
  EXPECT_TRUE(control->check(path, "Bearer " + bob).allowed);

  dir.write("tokens", "bob:" + bob + "\ncarol:short\n");
  auto failed = control->reload();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, errc::invalid_request);
  EXPECT_NE(failed.error().detail.find("line 2"), std::string::npos);
  EXPECT_TRUE(control->check(path, "Bearer " + bob).allowed);

  std::filesystem::remove(file);
  auto gone = control->reload();
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, boost::system::errc::no_such_file_or_directory)
      << gone.error().code.message();
  EXPECT_TRUE(control->check(path, "Bearer " + bob).allowed);
}

// Checks on several threads while the token list is swapped under them (`make tsan` runs it):
// each check sees the old list or the new one, never a mix or a torn one.
TEST(access_control, checks_run_concurrently_with_reloads) {
  temp_dir dir;
  const auto file = dir.write("tokens", "alice:" + alice + "\n");
  auto control = load_ok(file, admin);
  ASSERT_TRUE(control);
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> checkers;
  for (int t = 0; t < 3; ++t) {
    checkers.emplace_back([&] {
      while (!stop.load()) {
        const auto as_alice = control->check("/m/@v/list", "Bearer " + alice);
        const auto as_bob = control->check("/m/@v/list", basic("u", bob));
        // Alice's token is in every list written below; bob's comes and goes.
        if (!as_alice.allowed || as_alice.name != "alice") wrong.fetch_add(1);
        if (as_bob.allowed && as_bob.name != "bob") wrong.fetch_add(1);
        if (!control->check("/metrics", "Bearer " + admin).allowed) wrong.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    dir.write("tokens",
              i % 2 == 0 ? "alice:" + alice + "\nbob:" + bob + "\n" : "alice:" + alice + "\n");
    EXPECT_TRUE(control->reload());
  }
  stop.store(true);
  for (auto& thread : checkers) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace gomodproxy::server
