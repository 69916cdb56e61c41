// check_config.cc: `petrel check-config -c FILE`.
#include "app/check_config.h"

#include <iostream>

#include "app/common.h"

namespace petrel::app {

void register_check_config(CLI::App& app) {
  auto* cmd = app.add_subcommand("check-config", "Validate a config file and print the effective configuration");
  auto path = std::make_shared<std::string>();
  add_config_option(cmd, *path);
  cmd->callback([path] {
    auto c = load_config_or_exit(*path);
    std::cout << config::to_toml(c);
  });
}

}  // namespace petrel::app
