#include "resolver/from_settings.hpp"

#include "sumdb/signed_note.hpp"

namespace gomodproxy::resolver {

outcome_of<resolver_options> options_from_settings(const config::settings& settings) {
  resolver_options options;
  options.tiers = settings.upstreams;
  options.private_tiers = settings.private_upstreams;
  options.private_patterns = settings.private_patterns;
  options.list_ttl = settings.list_ttl;
  options.negative_ttl = settings.negative_ttl;
  options.deadlines.connect = settings.connect_timeout;
  options.deadlines.first_byte = settings.first_byte_timeout;
  options.deadlines.total = settings.fill_timeout;
  options.fill_timeout = settings.fill_timeout;
  options.all_failed_502 = settings.all_failed_502;
  options.offline = settings.offline;
  options.hedge_after = settings.hedge_after;
  for (const auto& database : settings.sumdbs) {
    auto key = sumdb::parse_verifier_key(database.key);
    if (!key) {
      return invalid_request("sumdb_key: " + database.key + ": " + key.error().message() +
                             "; expected a verifier key like " + config::settings{}.sumdb_key_text);
    }
    options.sumdbs.push_back({database.name, database.tiers, *key});
  }
  options.verify_sumdb = settings.verify == "sumdb";
  options.no_sumdb_patterns = settings.no_sumdb_patterns;
  return options;
}

}  // namespace gomodproxy::resolver
