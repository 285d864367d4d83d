#include "sumdb/tree_note.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

#include "sumdb/base64.hpp"
#include "sumdb/signed_note.hpp"

namespace gomodproxy::sumdb {
namespace {

constexpr std::string_view tree_prefix = "go.sum database tree\n";
constexpr std::size_t max_tree_text_bytes = 1000000;

// Decimal as strconv.FormatInt would write it: no sign, no leading zeros, fits in int64.
std::optional<std::int64_t> parse_canonical_count(std::string_view digits) {
  if (digits.empty() || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

// The go.sum lines of one module version; a leading blank line would be an empty record.
bool is_record_text(std::string_view text) {
  return !text.empty() && text.front() != '\n' && is_note_text(text);
}

}  // namespace

boost::system::result<tree_head> parse_tree_head(std::string_view text) {
  const auto malformed = make_error_code(verify_errc::malformed_tree);
  if (text.size() > max_tree_text_bytes || text.substr(0, tree_prefix.size()) != tree_prefix) {
    return malformed;
  }
  std::string_view rest = text.substr(tree_prefix.size());
  const std::size_t size_end = rest.find('\n');
  if (size_end == std::string_view::npos) return malformed;
  const std::size_t root_end = rest.find('\n', size_end + 1);
  if (root_end == std::string_view::npos) return malformed;
  const auto size = parse_canonical_count(rest.substr(0, size_end));
  const auto root = decode_base64(rest.substr(size_end + 1, root_end - size_end - 1));
  tree_head head;
  if (!size || !root || root->size() != head.root.size()) return malformed;
  head.size = *size;
  std::copy(root->begin(), root->end(), head.root.begin());
  return head;
}

std::string format_tree_head(const tree_head& head) {
  return std::string(tree_prefix) + std::to_string(head.size) + "\n" +
         encode_base64({reinterpret_cast<const char*>(head.root.data()), head.root.size()}) + "\n";
}

boost::system::result<lookup_record> parse_lookup_response(std::string_view body) {
  const auto malformed = make_error_code(verify_errc::malformed_record);
  const std::size_t id_end = body.find('\n');
  if (id_end == std::string_view::npos) return malformed;
  const auto id = parse_canonical_count(body.substr(0, id_end));
  if (!id) return malformed;
  const std::string_view after_id = body.substr(id_end + 1);
  const std::size_t blank = after_id.find("\n\n");
  if (blank == std::string_view::npos) return malformed;
  lookup_record record;
  record.id = *id;
  record.text = std::string(after_id.substr(0, blank + 1));
  if (!is_record_text(record.text)) return malformed;
  record.signed_tree = std::string(after_id.substr(blank + 2));
  return record;
}

std::optional<std::string> go_sum_hash(std::string_view record_text, std::string_view module_path,
                                       std::string_view version, bool go_mod) {
  std::string prefix =
      std::string(module_path) + " " + std::string(version) + (go_mod ? "/go.mod " : " ");
  while (!record_text.empty()) {
    const auto line = record_text.substr(0, record_text.find('\n'));
    record_text.remove_prefix(std::min(record_text.size(), line.size() + 1));
    if (line.starts_with(prefix) && line.substr(prefix.size()).starts_with("h1:")) {
      return std::string(line.substr(prefix.size()));
    }
  }
  return std::nullopt;
}

}  // namespace gomodproxy::sumdb
