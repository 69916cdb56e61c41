// app/check_config.h: `petrel check-config`: prints the effective config, or one line per
// problem and exit code 2.
#pragma once
#include <CLI/CLI.hpp>
namespace petrel::app {
void register_check_config(CLI::App& app);
}  // namespace petrel::app
