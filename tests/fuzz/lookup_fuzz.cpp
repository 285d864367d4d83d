// A checksum database's "/lookup/<module>@<version>" answer and the tree head it closes with, as
// the proxy checks them before caching: each input is the database's verifier key line, then the
// answer ("<key>\n<answer>"). The module version is taken from the record's first line, so the
// go.sum line search is exercised on the lines that matter. Invariants: a parsed answer is exactly
// its id line, record text, blank line and note; the record text is note text ending in '\n';
// a go.sum hash found is one "h1:" token of a line; a tree head parsed from any note text formats
// back to a text that parses to the same head and shares its first two lines.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sumdb/signed_note.hpp"
#include "sumdb/tree_note.hpp"

namespace {

using namespace gomodproxy::sumdb;

void require(bool holds) {
  if (!holds) std::abort();
}

void check_tree_head(std::string_view text) {
  const auto head = parse_tree_head(text);
  if (!head) return;
  require(head->size >= 0);
  const std::string formatted = format_tree_head(*head);
  const auto again = parse_tree_head(formatted);
  require(again.has_value() && *again == *head);
  // The first two lines (title and size) are canonical, so formatting keeps them byte for byte.
  const auto second_line_end = formatted.find('\n', formatted.find('\n') + 1);
  require(text.substr(0, second_line_end + 1) == formatted.substr(0, second_line_end + 1));
}

void check_go_sum_lines(const lookup_record& record) {
  const std::string_view text = record.text;
  const auto first_line = text.substr(0, text.find('\n'));
  const auto space = first_line.find(' ');
  if (space == std::string_view::npos) return;
  const auto module_path = first_line.substr(0, space);
  auto version = first_line.substr(space + 1, first_line.find(' ', space + 1) - space - 1);
  if (version.ends_with("/go.mod")) version.remove_suffix(std::string_view("/go.mod").size());
  for (const bool go_mod : {false, true}) {
    const auto hash = go_sum_hash(text, module_path, version, go_mod);
    if (!hash) continue;
    require(hash->starts_with("h1:"));
    require(hash->find('\n') == std::string::npos);
    require(text.find(std::string(module_path) + " " + std::string(version) +
                      (go_mod ? "/go.mod " : " ") + *hash) != std::string_view::npos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto newline = input.find('\n');
  if (newline == std::string_view::npos) return 0;
  const std::string_view key_line = input.substr(0, newline);
  const std::string_view body = input.substr(newline + 1);

  const auto record = parse_lookup_response(body);
  if (!record) return 0;
  require(record->id >= 0);
  require(!record->text.empty() && record->text.back() == '\n' && is_note_text(record->text));
  require(std::to_string(record->id) + "\n" + record->text + "\n" + record->signed_tree == body);
  check_go_sum_lines(*record);

  // What the tree head parser sees after a signature check, and (so that mutations need not keep
  // a valid signature to reach it) what it would see without one.
  if (const auto note = parse_note(record->signed_tree)) check_tree_head(note->text);
  check_tree_head(record->signed_tree);
  if (const auto key = parse_verifier_key(key_line)) {
    if (const auto text = open_note(record->signed_tree, *key)) check_tree_head(*text);
  }
  return 0;
}
