// cmd_accounts.cc: `petrel domain`, `petrel user`, `petrel alias` over auth::AccountStore.
#include "app/cmd_accounts.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/common.h"
#include "auth/account_store.h"
#include "base/strings.h"

namespace petrel::app {
namespace {

using Action = std::function<base::Status(auth::AccountStore&)>;

[[noreturn]] void fail(const std::string& message) {
  std::cerr << "petrel: " << message << "\n";
  std::exit(kExitFailure);
}

// Loads the config (exit 2 on errors), opens the store in its data directory, runs `action`,
// closes the store, and exits 1 with the error when the action failed.
void with_store(const std::string& config_path, const Action& action) {
  auto config = load_config_or_exit(config_path);
  const std::string data = enter_data_dir_as_owner(config, /*create=*/true);
  base::Status status;
  {
    // With CRAM-MD5 enabled, new passwords also store its key state (auth/cram_md5_state.h).
    auth::AccountStoreOptions options;
    options.cram_md5 = std::find(config.auth.mechanisms.begin(), config.auth.mechanisms.end(), "CRAM-MD5") !=
                       config.auth.mechanisms.end();
    auto store = auth::AccountStore::open(auth::database_path(data), options);
    if (!store) fail(store.error().message);
    status = action(**store);
  }
  if (!status) fail(status.error().message);
}

// A quota as the administrator writes it: a size for base::parse_size ("10M", "500MiB",
// "1048576"), or "0", "none" or "unlimited" for no quota. nullopt when malformed.
std::optional<std::uint64_t> parse_quota(std::string_view text) {
  if (base::iequals(text, "none") || base::iequals(text, "unlimited")) return 0;
  auto bytes = base::parse_size(text);
  if (!bytes || *bytes > auth::kMaxQuotaBytes) return std::nullopt;
  return bytes;
}

// Checks a SIZE argument while the command line is parsed, so a bad one is a usage error
// (exit 2) before the store is opened or a password asked for.
const CLI::Validator& quota_validator() {
  static const CLI::Validator validator(
      [](std::string& text) -> std::string {
        if (parse_quota(text)) return {};
        return "invalid size '" + text + "' (use e.g. 10M, 500MiB, 2G, a number of bytes, or 0/none for unlimited)";
      },
      "SIZE");
  return validator;
}

// The SIZE the validator passed, as bytes.
std::uint64_t quota_bytes(const std::string& text) {
  auto bytes = parse_quota(text);
  if (!bytes) {  // cannot happen after quota_validator(); still a usage error, not "unlimited"
    std::cerr << "petrel: invalid size '" << text << "'\n";
    std::exit(kExitConfig);
  }
  return *bytes;
}

// A leaf command with -c and a callback that runs `make_action()` against the store. The
// action is built at callback time so that it sees the parsed arguments.
CLI::App* leaf(CLI::App* parent, const std::string& name, const std::string& help,
               std::function<Action()> make_action) {
  auto* cmd = parent->add_subcommand(name, help);
  auto config_path = std::make_shared<std::string>();
  add_config_option(cmd, *config_path);
  cmd->callback([config_path, make_action = std::move(make_action)] { with_store(*config_path, make_action()); });
  return cmd;
}

void register_domain(CLI::App& app) {
  auto* domain = app.add_subcommand("domain", "Manage the domains Petrel receives mail for");
  domain->require_subcommand(1);

  auto name = std::make_shared<std::string>();
  auto* add = leaf(domain, "add", "Start serving DOMAIN", [name] {
    return [name](auth::AccountStore& s) { return s.add_domain(*name); };
  });
  add->add_option("DOMAIN", *name, "Domain name, e.g. example.org")->required();

  auto del_name = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  auto* del = leaf(domain, "del", "Stop serving DOMAIN", [del_name, force] {
    return [del_name, force](auth::AccountStore& s) { return s.del_domain(*del_name, *force); };
  });
  del->add_option("DOMAIN", *del_name, "Domain name")->required();
  del->add_flag("--force", *force, "Also delete its accounts and aliases (mail on disk is kept)");

  leaf(domain, "list", "List the domains, with their catch-all target if any", [] {
    return [](auth::AccountStore& s) -> base::Status {
      auto list = s.list_domains();
      if (!list) return list.error();
      for (const auto& d : *list) {
        std::cout << d.name;
        if (!d.catch_all.empty()) std::cout << " catch-all=" << d.catch_all;
        std::cout << "\n";
      }
      return {};
    };
  });

  auto ca_name = std::make_shared<std::string>();
  auto ca_target = std::make_shared<std::string>();
  auto* catch_all = leaf(domain, "catch-all", "Send mail for unknown users of DOMAIN to TARGET; no TARGET removes it",
                         [ca_name, ca_target] {
                           return [ca_name, ca_target](auth::AccountStore& s) {
                             return s.set_catch_all(*ca_name, *ca_target);
                           };
                         });
  catch_all->add_option("DOMAIN", *ca_name, "Domain name")->required();
  catch_all->add_option("TARGET", *ca_target, "Address that receives the mail");
}

void register_user(CLI::App& app) {
  auto* user = app.add_subcommand("user", "Manage accounts (mailboxes with a password)");
  user->require_subcommand(1);

  auto add_address = std::make_shared<std::string>();
  auto add_quota = std::make_shared<std::string>("0");
  auto* add = leaf(user, "add", "Create the account ADDRESS; the password is read from stdin or prompted for",
                   [add_address, add_quota] {
                     return [add_address, add_quota](auth::AccountStore& s) {
                       std::uint64_t quota = quota_bytes(*add_quota);
                       return s.add_user(*add_address, read_password(/*confirm=*/true), quota);
                     };
                   });
  add->add_option("ADDRESS", *add_address, "user@domain; the domain must exist")->required();
  add->add_option("--quota", *add_quota, "Mailbox quota, e.g. 10M, 2G (binary units) or bytes; 0/none: unlimited (default)")
      ->check(quota_validator());

  auto del_address = std::make_shared<std::string>();
  auto* del = leaf(user, "del", "Delete the account ADDRESS (mail on disk is kept)", [del_address] {
    return [del_address](auth::AccountStore& s) { return s.del_user(*del_address); };
  });
  del->add_option("ADDRESS", *del_address, "user@domain")->required();

  auto list_domain = std::make_shared<std::string>();
  auto* list = leaf(user, "list", "List the accounts, of every domain or of DOMAIN", [list_domain] {
    return [list_domain](auth::AccountStore& s) -> base::Status {
      auto users = s.list_users(list_domain->empty() ? std::nullopt : std::optional<std::string_view>(*list_domain));
      if (!users) return users.error();
      // One account per line; its quota after it when it has one (as `domain list` shows a
      // catch-all), so `grep -x ADDRESS` still finds an unlimited account.
      for (const auto& u : *users) {
        std::cout << u.address;
        if (u.quota_bytes != 0) std::cout << " quota=" << base::format_size(u.quota_bytes);
        std::cout << "\n";
      }
      return {};
    };
  });
  list->add_option("DOMAIN", *list_domain, "Only this domain");

  auto pw_address = std::make_shared<std::string>();
  auto* passwd = leaf(user, "passwd", "Change the password of ADDRESS; read from stdin or prompted for",
                      [pw_address] {
                        return [pw_address](auth::AccountStore& s) {
                          return s.set_password(*pw_address, read_password(/*confirm=*/true));
                        };
                      });
  passwd->add_option("ADDRESS", *pw_address, "user@domain")->required();

  auto quota_address = std::make_shared<std::string>();
  auto quota_size = std::make_shared<std::string>();
  auto* quota = leaf(user, "quota",
                     "Set the mailbox quota of ADDRESS; mail over it is deferred (4.2.2) and retried. "
                     "A running server applies it within a second",
                     [quota_address, quota_size] {
                       return [quota_address, quota_size](auth::AccountStore& s) {
                         return s.set_quota(*quota_address, quota_bytes(*quota_size));
                       };
                     });
  quota->add_option("ADDRESS", *quota_address, "user@domain")->required();
  quota->add_option("SIZE", *quota_size, "e.g. 10M, 500MiB, 2G (binary units) or bytes; 0, none or unlimited: no quota")
      ->required()
      ->check(quota_validator());
}

void register_alias(CLI::App& app) {
  auto* alias = app.add_subcommand("alias", "Manage aliases (addresses that forward to others)");
  alias->require_subcommand(1);

  auto add_address = std::make_shared<std::string>();
  auto add_targets = std::make_shared<std::vector<std::string>>();
  auto* add = leaf(alias, "add", "Make ADDRESS deliver to each TARGET (local or remote)", [add_address, add_targets] {
    return [add_address, add_targets](auth::AccountStore& s) -> base::Status {
      for (const auto& target : *add_targets) {
        if (auto st = s.add_alias(*add_address, target); !st) return st;
      }
      return {};
    };
  });
  add->add_option("ADDRESS", *add_address, "alias@domain; the domain must exist")->required();
  add->add_option("TARGET", *add_targets, "Where the mail goes")->required();

  auto del_address = std::make_shared<std::string>();
  auto del_target = std::make_shared<std::string>();
  auto* del = leaf(alias, "del", "Remove TARGET from ADDRESS, or the whole alias when no TARGET is given",
                   [del_address, del_target] {
                     return [del_address, del_target](auth::AccountStore& s) {
                       return s.del_alias(*del_address, del_target->empty()
                                                            ? std::nullopt
                                                            : std::optional<std::string_view>(*del_target));
                     };
                   });
  del->add_option("ADDRESS", *del_address, "alias@domain")->required();
  del->add_option("TARGET", *del_target, "One target to remove");

  auto list_domain = std::make_shared<std::string>();
  auto* list = leaf(alias, "list", "List aliases as 'ADDRESS TARGET', one line per target", [list_domain] {
    return [list_domain](auth::AccountStore& s) -> base::Status {
      auto aliases = s.list_aliases(list_domain->empty() ? std::nullopt : std::optional<std::string_view>(*list_domain));
      if (!aliases) return aliases.error();
      for (const auto& a : *aliases) std::cout << a.address << " " << a.target << "\n";
      return {};
    };
  });
  list->add_option("DOMAIN", *list_domain, "Only this domain");
}

}  // namespace

void register_account_commands(CLI::App& app) {
  register_domain(app);
  register_user(app);
  register_alias(app);
}

}  // namespace petrel::app
