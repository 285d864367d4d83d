// Condensing and scrubbing the go command's failures, and telling not-found from transient.
#include "direct/go_errors.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace gomodproxy::direct {
namespace {

TEST(GoErrors, NetrcPasswords) {
  EXPECT_EQ(netrc_passwords("machine git.corp.example.test login ci password s3cr3t-pass\n"
                            "machine other\n  login a\n  password\ttwo-words\n"
                            "macdef init\npassword not-a-password\n\n"
                            "default login x password last-one\n"),
            (std::vector<std::string>{"s3cr3t-pass", "two-words", "last-one"}));
  EXPECT_TRUE(netrc_passwords("").empty());
  EXPECT_TRUE(netrc_passwords("machine h login u\n").empty());
}

TEST(GoErrors, KnownSecretsComeFromNetrcAndHomeNetrc) {
  auto dir =
      std::filesystem::temp_directory_path() / ("go_errors_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "netrc") << "machine a login u password from-netrc-var\n"; }
  { std::ofstream(dir / ".netrc") << "machine a login u password from-home\n"; }
  // git reads $HOME/.netrc even when NETRC names another file for the go command.
  EXPECT_EQ(known_secrets({{"NETRC", (dir / "netrc").string()}, {"HOME", dir.string()}}),
            (std::vector<std::string>{"from-netrc-var", "from-home"}));
  EXPECT_EQ(known_secrets({{"HOME", dir.string()}}), std::vector<std::string>{"from-home"});
  EXPECT_TRUE(known_secrets({{"NETRC", (dir / "missing").string()}}).empty());
  EXPECT_TRUE(known_secrets({}).empty());
  std::filesystem::remove_all(dir);
}

TEST(GoErrors, Scrub) {
  struct row {
    const char* in;
    const char* out;
  };
  const row rows[] = {
      {"fatal: unable to access 'https://ci:hunter22@git.corp.example.test/a.git/'",
       "fatal: unable to access 'https://git.corp.example.test/a.git/'"},
      {"https://token@github.com/org/repo", "https://github.com/org/repo"},
      {"http://u:p%40ss@h:8080/x http://other@h2/y", "http://h:8080/x http://h2/y"},
      {"Authorization: Basic dXNlcjpwYXNz\nnext line", "Authorization: ***\nnext line"},
      {"authorization:Bearer abc", "authorization:***"},
      {"url x-access-token:ghs_abcdefghijklmnop@github.com", "url x-access-token:***@github.com"},
      {"oauth2:glpat-aaaaaaaaaaaaaaaa@gitlab.example.com", "oauth2:***@gitlab.example.com"},
      {"using token ghp_1234567890abcdefghij now", "using token *** now"},
      {"header Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "header Bearer ***"},
      {"glpat-ABCDEFGHIJ1234567890 leaked", "*** leaked"},
      {"git ls-remote -q origin: exit status 128", "git ls-remote -q origin: exit status 128"},
      {"git@github.com:org/repo.git", "git@github.com:org/repo.git"},
      {"'https://ci:p@ss@git.corp.example.test/a.git/'", "'https://git.corp.example.test/a.git/'"},
      {"git+ssh://u@h/x 1://u@h 'ssh://u@h'", "git+ssh://h/x 1://u@h 'ssh://h'"},
  };
  for (const auto& r : rows) EXPECT_EQ(scrub(r.in, {}), r.out) << r.in;
}

TEST(GoErrors, KnownSecretsAreReplacedAsGivenAndPercentEncoded) {
  std::vector<std::string> secrets = {"p@ss word!", "abc"};
  EXPECT_EQ(scrub("saw p@ss word! and p%40ss%20word%21 and abc", secrets),
            "saw *** and *** and abc");
}

TEST(GoErrors, CondenseMakesOneShortLine) {
  const std::string stderr_text =
      "go: module git.corp.example.test/team/nope: git ls-remote -q origin in "
      "/srv/cache/direct/mod/cache/vcs/"
      "6a0a8dde763a224c8fc757246b12c62ee913e98851c23243b3f69ac7899db120: "
      "exit status 128:\n\tfatal: repository "
      "'https://ci:hunter22@git.corp.example.test/team/nope.git/' "
      "not found\n";
  EXPECT_EQ(condense("go list -m", stderr_text, {"hunter22"}, "/srv/cache/direct"),
            "go list -m: module git.corp.example.test/team/nope: git ls-remote -q origin: exit "
            "status 128: fatal: repository 'https://git.corp.example.test/team/nope.git/' not "
            "found");
}

TEST(GoErrors, CondenseCutsAtTheLimitWithoutSplittingACharacter) {
  std::string long_text(400, 'x');
  auto line = condense("go mod download", long_text, {}, "");
  EXPECT_EQ(line.size(), max_reason_bytes);
  EXPECT_TRUE(line.ends_with("..."));
  std::string accents;
  for (int i = 0; i < 200; ++i) accents += "\xc3\xa9";
  line = condense("go mod download", accents, {}, "");
  EXPECT_LE(line.size(), max_reason_bytes);
  // What is left before "..." is whole two-byte characters after the 17-byte prefix.
  EXPECT_EQ((line.size() - 3 - 17) % 2, 0u);
}

TEST(GoErrors, CondenseDropsControlBytes) {
  EXPECT_EQ(condense("go list -m", "a\x1b[31mred\r\n\n  b\x7f", {}, ""), "go list -m: a [31mred b");
}

TEST(GoErrors, ASecretCutByTheLimitIsStillGone) {
  std::string text(280, 'y');
  text += " hunter2222222222";
  auto line = condense("go mod download", text, {"hunter2222222222"}, "");
  EXPECT_EQ(line.find("hunter"), std::string::npos);
}

// What a remote says reaches the go command's message whole, so a hostile git server chooses
// its length and shape: none of it may crash the server or hold a thread for long.
// A remote's unbounded line once crashed the server (std::regex recursion) and took seconds to
// scrub; how long this takes is for a benchmark, whether it ends and what it leaves is checked
// here.
TEST(GoErrors, HostileLongMessagesAreCondensedAndScrubbed) {
  const std::string prefix =
      "go: example.com/x@v1.0.0: git ls-remote -q origin: exit status 128:\n\t";
  const std::vector<std::string> messages = {
      prefix + "remote: Authorization: Basic " + std::string(60000, 'x'),
      prefix + "remote: " + std::string(60000, 'a'),
      prefix + "remote: bearer " + std::string(60000, 'q'),
      prefix + "remote: x-access-token:" + std::string(60000, 'k'),
      prefix + "remote: ghp_" + std::string(60000, 'g'),
      prefix + std::string(3000, ' ') + "https://ci:hunter22-long@h/" + std::string(60000, 'u'),
  };
  for (const auto& message : messages) {
    auto line = condense("go mod download", message, {}, "/srv/cache/direct");
    EXPECT_LE(line.size(), max_reason_bytes);
    EXPECT_EQ(line.find("hunter22"), std::string::npos);
    EXPECT_EQ(classify_failure(message), upstream::outcome::not_found);
  }
  EXPECT_EQ(classify_failure(std::string(1 << 20, 'r') + " connection refused"),
            upstream::outcome::error);
}

TEST(GoErrors, Classify) {
  using upstream::outcome;
  struct row {
    const char* message;
    outcome expected;
  };
  const row rows[] = {
      {"fatal: repository 'https://h/x.git/' not found", outcome::not_found},
      {"invalid version: unknown revision v1.9.0", outcome::not_found},
      {"fatal: could not read Username for 'https://h': terminal prompts disabled",
       outcome::not_found},
      {"reading https://h/x?go-get=1: 404 Not Found", outcome::not_found},
      {"dial tcp 127.0.0.1:443: connect: connection refused", outcome::error},
      {"read: connection reset by peer", outcome::error},
      {"dial tcp: lookup h on 10.0.0.1:53: read udp: i/o timeout", outcome::error},
      {"net/http: TLS handshake timeout", outcome::error},
      {"lookup h: server misbehaving", outcome::error},
      {"fatal: unable to access 'https://h/x/': The requested URL returned error: 502",
       outcome::error},
      {"error: RPC failed; HTTP 503 curl 22", outcome::error},
      {"reading https://h/x?go-get=1: 500 Internal Server Error", outcome::error},
      {"fatal: unable to access 'https://h/x/': The requested URL returned error: 403",
       outcome::not_found},
      {"v1.500.0 not found", outcome::not_found},
      {"git fetch -f origin: signal: killed", outcome::error},
      // What git and the go command say when the connect guard could not connect (502) or
      // timed out (504): the guard checked the name before, so the host is there.
      {"git ls-remote -q origin: exit status 128: fatal: unable to access "
       "'https://github.com/x/y/': CONNECT tunnel failed, response 502",
       outcome::error},
      {"https fetch: Get \"https://h.example/x?go-get=1\": Gateway Timeout: h.example:443: "
       "connect: timed out after 10s",
       outcome::error},
      {"https fetch: Get \"https://h.example/x?go-get=1\": Bad Gateway: h.example: dns: host not "
       "found",
       outcome::not_found},
      {"git ls-remote -q origin: exit status 128: fatal: unable to access "
       "'https://github.com/x/y/': CONNECT tunnel failed, response 403",
       outcome::not_found},
      {"write /srv/cache/direct/mod/cache/download/h/x/@v/v1.0.0.zip: no space left on device",
       outcome::error},
      {"mkdir /srv/cache/direct/mod/cache/vcs: read-only file system", outcome::error},
      {"open /srv/cache/direct/mod/cache/lock: too many open files", outcome::error},
      {"git ls-remote: fork/exec /usr/bin/git: cannot allocate memory", outcome::error},
  };
  for (const auto& r : rows) EXPECT_EQ(classify_failure(r.message), r.expected) << r.message;
}

}  // namespace
}  // namespace gomodproxy::direct
