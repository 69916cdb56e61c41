// app/common.h: what every `petrel` subcommand shares: the -c option, loading the config
// with one clear error line per problem (exit 2), and taking the data directory owner's
// identity when run as root so that files we create stay usable by the server.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "config/config.h"

namespace petrel::app {

// Exit codes: 0 ok, 1 the operation failed, 2 usage or configuration error.
inline constexpr int kExitFailure = 1;
inline constexpr int kExitConfig = 2;

// Adds "-c,--config FILE" to `cmd`, defaulting to ./petrel.toml then /etc/petrel/petrel.toml.
void add_config_option(CLI::App* cmd, std::string& path);

// Loads the config or prints its errors to stderr and exits 2.
config::Config load_config_or_exit(const std::string& path);

// Enters the data directory (app/data_dir.h: it becomes the working directory; `create` makes
// it when missing, owned by server.user) and returns the path to use for it from then on
// ("."). Then, when running as root and the directory belongs to another user, switches to
// that user (and its group) so files created here (SQLite WAL, spool) stay the server's.
// Exits 1 with a message when the directory cannot be entered or the switch fails.
std::string enter_data_dir_as_owner(const config::Config& config, bool create);

// Reads a password: from stdin when it is not a terminal (first line), else prompts twice
// without echo. Never from argv.
std::string read_password(bool confirm);

}  // namespace petrel::app
