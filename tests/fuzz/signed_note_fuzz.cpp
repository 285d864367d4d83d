// Signed notes and verifier keys of the checksum database. Each input is a verifier key line, then
// a note ("<key>\n<note>"), as the proxy meets them: the key from its configuration, the note from
// a mirror's /latest. Invariants: a parsed note re-assembled from its parts parses to the same
// parts; its text is note text ending in '\n'; open_note returns exactly the parsed text and only
// when a signature names the key; a parsed key re-encoded parses to the same key; base64 decoding
// and encoding agree.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sumdb/base64.hpp"
#include "sumdb/signed_note.hpp"

namespace {

using namespace gomodproxy::sumdb;

void require(bool holds) {
  if (!holds) std::abort();
}

std::string big_endian(std::uint32_t value) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(value >> (24 - 8 * i));
  return out;
}

std::string assemble(const signed_note& note) {
  std::string out = note.text + "\n";
  for (const auto& signature : note.signatures) {
    out += "\xe2\x80\x94 " + signature.name + " " +
           encode_base64(big_endian(signature.key_hash) + signature.signature) + "\n";
  }
  return out;
}

void check_key(std::string_view line) {
  const auto key = parse_verifier_key(line);
  if (!key) return;
  char hash[9];
  std::snprintf(hash, sizeof hash, "%08x", key->key_hash);
  const std::string encoded =
      key->name + "+" + hash + "+" +
      encode_base64(std::string(1, '\x01') +
                    std::string(reinterpret_cast<const char*>(key->public_key.data()), 32));
  const auto again = parse_verifier_key(encoded);
  require(again.has_value());
  require(again->name == key->name && again->key_hash == key->key_hash &&
          again->public_key == key->public_key);
}

void check_note(std::string_view message, std::string_view key_line) {
  const auto note = parse_note(message);
  if (note) {
    require(!note->text.empty() && note->text.back() == '\n');
    require(is_note_text(note->text));
    require(!note->signatures.empty() && note->signatures.size() <= 100);
    const auto again = parse_note(assemble(*note));
    require(again.has_value());
    require(again->text == note->text);
    require(again->signatures.size() == note->signatures.size());
    for (std::size_t i = 0; i < note->signatures.size(); ++i) {
      require(again->signatures[i].name == note->signatures[i].name);
      require(again->signatures[i].key_hash == note->signatures[i].key_hash);
      require(again->signatures[i].signature == note->signatures[i].signature);
    }
  }
  const auto key = parse_verifier_key(key_line);
  if (!key) return;
  const auto opened = open_note(message, *key);
  if (opened) {
    require(note.has_value() && *opened == note->text);
    bool named = false;
    for (const auto& signature : note->signatures) {
      named = named || (signature.name == key->name && signature.key_hash == key->key_hash);
    }
    require(named);
  } else {
    require(note.has_value() || opened.error() == make_error_code(verify_errc::malformed_note));
  }
}

void check_base64(std::string_view text) {
  if (const auto bytes = decode_base64(text)) {
    require(decode_base64(encode_base64(*bytes)) == *bytes);
    require(encode_base64(*bytes).size() == text.size());
  }
  const std::string encoded = encode_base64(text);
  require(decode_base64(encoded) == std::string(text));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto newline = input.find('\n');
  const std::string_view key_line = input.substr(0, newline);
  const std::string_view message =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  check_key(key_line);
  check_note(message, key_line);
  check_base64(key_line);
  return 0;
}
