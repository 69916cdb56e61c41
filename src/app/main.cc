// main.cc: the `petrel` program: one binary, one subcommand per job.
#include <CLI/CLI.hpp>

#include "app/serve.h"
#include "app/check_config.h"
#include "app/common.h"
#include "app/cmd_accounts.h"
#include "app/cmd_queue.h"

#ifndef PETREL_VERSION
#define PETREL_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  CLI::App app{"Petrel: a complete mail server (SMTP, submission, queue, delivery)", "petrel"};
  app.set_version_flag("--version", "petrel " PETREL_VERSION);
  app.require_subcommand(1);
  petrel::app::register_serve(app);
  petrel::app::register_check_config(app);
  petrel::app::register_account_commands(app);
  petrel::app::register_queue_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end here with 0; usage errors exit 2 like config errors.
    return app.exit(e) == 0 ? 0 : petrel::app::kExitConfig;
  }
  return 0;
}
