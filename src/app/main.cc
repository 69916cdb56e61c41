// main.cc: the `petrel` program: one binary, one subcommand per job.
#include <CLI/CLI.hpp>

#include <string_view>

#include "app/serve.h"
#include "app/check_config.h"
#include "app/common.h"
#include "app/cmd_accounts.h"
#include "app/cmd_queue.h"
#include "app/cmd_sendmail.h"

#ifndef PETREL_VERSION
#define PETREL_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  // sendmail's command line is not CLI11's (-oi, -fADDR, -t): dispatch before parsing, both
  // as `petrel sendmail ...` and when run through a link named "sendmail".
  std::string_view self = argv[0] ? argv[0] : "";
  if (auto slash = self.rfind('/'); slash != std::string_view::npos) self.remove_prefix(slash + 1);
  if (self == "sendmail") return petrel::app::sendmail_main(argc, argv);
  if (argc >= 2 && std::string_view(argv[1]) == "sendmail") return petrel::app::sendmail_main(argc - 1, argv + 1);
  CLI::App app{"Petrel: a complete mail server (SMTP, submission, queue, delivery)", "petrel"};
  app.set_version_flag("--version", "petrel " PETREL_VERSION);
  app.require_subcommand(1);
  petrel::app::register_serve(app);
  petrel::app::register_check_config(app);
  petrel::app::register_account_commands(app);
  petrel::app::register_queue_commands(app);
  // Listed for --help only: main() hands `petrel sendmail ...` to sendmail_main() before this.
  app.add_subcommand("sendmail", "Queue a message from standard input, as sendmail(8) does (-t -i -f -F; see docs)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end here with 0; usage errors exit 2 like config errors.
    return app.exit(e) == 0 ? 0 : petrel::app::kExitConfig;
  }
  return 0;
}
