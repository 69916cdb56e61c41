// serve.cc: `petrel serve` (being built: the listeners are not wired yet).
#include "app/serve.h"

#include <iostream>

#include "app/common.h"

namespace petrel::app {

void register_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Run the mail server in the foreground");
  auto path = std::make_shared<std::string>();
  add_config_option(cmd, *path);
  cmd->callback([path] {
    auto c = load_config_or_exit(*path);
    std::cerr << "petrel: serve is not wired yet\n";
    std::exit(kExitFailure);
  });
}

}  // namespace petrel::app
