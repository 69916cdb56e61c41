// app/cmd_accounts.h: `petrel domain|user|alias ...`: manage the accounts store (petrel.db in
// the configured data directory) from the command line.
//
//   petrel domain add DOMAIN | del DOMAIN [--force] | list | catch-all DOMAIN [TARGET]
//   petrel user   add ADDRESS | del ADDRESS | list [DOMAIN] | passwd ADDRESS
//   petrel alias  add ADDRESS TARGET... | del ADDRESS [TARGET] | list [DOMAIN]
//
// Every command takes -c FILE. Passwords are read from stdin when it is not a terminal (first
// line), else prompted for twice without echo; never from argv, where `ps` would show them.
// The data directory is created (mode 0750) when missing. A running server sees changes at
// its next directory refresh.
// Output: one line per item, plain. Exit codes: 0 ok; 1 the operation failed, with one line
// "petrel: ..." on stderr; 2 the config is bad.
#pragma once
#include <CLI/CLI.hpp>
namespace petrel::app {
void register_account_commands(CLI::App& app);
}  // namespace petrel::app
