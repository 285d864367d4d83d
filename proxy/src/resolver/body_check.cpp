#include "resolver/body_check.hpp"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <optional>
#include <utility>

#include "protocol/module_path.hpp"
#include "protocol/semver.hpp"
#include "sumdb/tile_plan.hpp"

namespace gomodproxy::resolver {
namespace {

constexpr std::uint64_t max_zip = 524288000;
constexpr std::uint64_t max_go_mod = 16777216;
constexpr std::uint64_t max_small = 1 << 20;

// The staged body read back whole: the reader's code when it fails, cache_corrupt when it
// holds less than was received.
outcome_of<std::string> read_all(std::uint64_t size, const sumdb::random_reader& read) {
  auto bytes = read(0, static_cast<std::size_t>(size));
  if (!bytes) {
    return failure{bytes.error(), "cannot read body back: " + bytes.error().message()};
  }
  if (bytes->size() != size) return failure{errc::cache_corrupt, "body shorter than received"};
  return std::move(*bytes);
}

// A hash tile is exactly its width's hashes: the go command's tile reader refuses one of any
// other length, so a cached one would be refused by every client that loads it. (Its hashes are
// checked against a signed tree by the proofs that load it.) Data tiles hold record texts.
outcome_of<void> check_tile_size(const protocol::module_request& request, std::string_view body) {
  const auto tile = sumdb::parse_tile_path(std::string_view(request.upstream_path).substr(1));
  if (!tile || tile->level < 0) return {};
  const auto want = static_cast<std::size_t>(tile->width) * std::tuple_size_v<sumdb::tlog_hash>;
  if (body.size() == want) return {};
  return verification_failed("tile of " + std::to_string(body.size()) + " bytes, not " +
                             std::to_string(want));
}

// RFC 3339 as Go's time.Time JSON decoding accepts it: date, 'T', time, zone.
bool looks_like_rfc3339(std::string_view t) {
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') ||
      t[13] != ':' || t[16] != ':') {
    return false;
  }
  char zone = t.back();
  return zone == 'Z' || zone == 'z' || (t.size() >= 25 && t[t.size() - 3] == ':');
}

// The value the go command's encoding/json decodes into the struct field `name`: keys match it
// without regard to ASCII case, and of several that match, the last one in the object wins.
const boost::json::value* go_field(const boost::json::object& object, std::string_view name) {
  const boost::json::value* found = nullptr;
  for (const auto& [key, value] : object) {
    if (key.size() == name.size() &&
        std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      found = &value;
    }
  }
  return found;
}

outcome_of<void> check_info(const protocol::module_request& request, std::string_view body) {
  boost::system::error_code ec;
  boost::json::value json = boost::json::parse(body, ec);
  if (ec || !json.is_object()) return verification_failed("info is not a JSON object");
  const auto& object = json.get_object();
  const auto* version = go_field(object, "Version");
  if (!version || !version->is_string()) return verification_failed("info has no Version");
  std::string_view v = version->get_string();
  if (protocol::canonical_version(v) != v)
    return verification_failed("info Version is not canonical");
  if (request.kind == protocol::endpoint::info && v != request.version) {
    return verification_failed("info is for version " + std::string(v) + " instead of " +
                               request.version);
  }
  if (auto fits = protocol::check_path_version(request.module_path, v); !fits) {
    return verification_failed("info Version does not fit the module path: " + fits.error().detail);
  }
  // A null Time decodes to the zero time, as an absent one does.
  if (const auto* time = go_field(object, "Time"); time && !time->is_null()) {
    if (!time->is_string() || !looks_like_rfc3339(time->get_string())) {
      return verification_failed("info Time is not an RFC 3339 time");
    }
  }
  return {};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// The go command rejects a go.mod that declares another path than the one required, so a tier
// answering with one has answered wrongly.
outcome_of<void> check_go_mod(const protocol::module_request& request, std::string_view body) {
  std::size_t start = 0;
  while (start <= body.size()) {
    std::size_t end = body.find('\n', start);
    if (end == std::string_view::npos) end = body.size();
    std::string_view line = trim(body.substr(start, end - start));
    start = end + 1;
    if (line.rfind("module", 0) != 0) continue;
    std::string_view rest = line.substr(6);
    if (!rest.empty() && rest.front() != ' ' && rest.front() != '\t' && rest.front() != '"' &&
        rest.front() != '`' && rest.front() != '(') {
      continue;  // a word such as "modules"
    }
    if (auto comment = rest.find("//"); comment != std::string_view::npos) {
      rest = rest.substr(0, comment);
    }
    rest = trim(rest);
    if (rest == "(") return {};  // block form: too rare to parse, accepted as is
    if (rest.size() >= 2 && (rest.front() == '"' || rest.front() == '`') &&
        rest.back() == rest.front()) {
      rest = rest.substr(1, rest.size() - 2);
    }
    if (rest == request.module_path) return {};
    return verification_failed("go.mod declares module " + std::string(rest.substr(0, 200)) +
                               " instead of " + request.module_path);
  }
  return verification_failed("go.mod has no module directive");
}

}  // namespace

std::uint64_t body_limit(protocol::endpoint kind) {
  switch (kind) {
    case protocol::endpoint::zip:
      return max_zip;
    case protocol::endpoint::mod:
      return max_go_mod;
    default:
      return max_small;
  }
}

outcome_of<void> check_body(const protocol::module_request& request, std::uint64_t size,
                            const sumdb::random_reader& read) {
  if (size > body_limit(request.kind)) return failure{errc::too_large, "response too large"};
  using protocol::endpoint;
  if (request.kind == endpoint::zip) {
    return sumdb::check_module_zip(request.module_path, request.version, size, read);
  }
  auto body = read_all(size, read);
  if (!body) return body.error();
  switch (request.kind) {
    case endpoint::info:
    case endpoint::query:
    case endpoint::latest:
      return check_info(request, *body);
    case endpoint::mod:
      return check_go_mod(request, *body);
    case endpoint::sumdb_tile:
      return check_tile_size(request, *body);
    case endpoint::list:
    case endpoint::zip:
    case endpoint::sumdb_supported:
    case endpoint::sumdb_lookup:
    case endpoint::sumdb_latest:
      break;
  }
  return {};
}

outcome_of<void> check_signed_answer(const protocol::module_request& request, std::uint64_t size,
                                     const sumdb::random_reader& read,
                                     const sumdb::verifier_key& key) {
  auto body = read_all(size, read);
  if (!body) return body.error();
  std::string_view note = *body;
  std::optional<sumdb::lookup_record> record;
  if (request.kind == protocol::endpoint::sumdb_lookup) {
    auto parsed = sumdb::parse_lookup_response(*body);
    if (!parsed) return verification_failed("lookup answer: " + parsed.error().message());
    record = std::move(*parsed);
    // The record must be the one asked for: a line of it names this module and version. As
    // for the go command, one line is enough: a version known only by its go.mod has no zip
    // line, and whether the line a fill needs is there is decided by that fill.
    if (!sumdb::go_sum_hash(record->text, request.module_path, request.version, false) &&
        !sumdb::go_sum_hash(record->text, request.module_path, request.version, true)) {
      return verification_failed("lookup record is for another module version");
    }
    note = record->signed_tree;
  }
  auto text = sumdb::open_note(note, key);
  if (!text)
    return verification_failed("tree head not signed by " + key.name + ": " +
                               text.error().message());
  auto head = sumdb::parse_tree_head(*text);
  if (!head) return verification_failed("tree head: " + head.error().message());
  if (record && record->id >= head->size)
    return verification_failed("lookup record lies beyond its tree");
  return {};
}

}  // namespace gomodproxy::resolver
