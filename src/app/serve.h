// app/serve.h: `petrel serve`: wires config, accounts, queue and listeners together and runs
// until SIGTERM/SIGINT.
#pragma once
#include <CLI/CLI.hpp>
namespace petrel::app {
void register_serve(CLI::App& app);
}  // namespace petrel::app
