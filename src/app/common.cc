// common.cc: -c handling, config loading, data-owner identity, password input.
#include "app/common.h"

#include "app/data_dir.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace petrel::app {

void add_config_option(CLI::App* cmd, std::string& path) {
  cmd->add_option("-c,--config", path, "Config file (default: ./petrel.toml, then /etc/petrel/petrel.toml)");
}

config::Config load_config_or_exit(const std::string& path) {
  std::string p = path.empty() ? config::default_config_path() : path;
  auto c = config::load_config(p);
  if (!c) {
    std::cerr << c.error().message << "\n";
    std::exit(kExitConfig);
  }
  return std::move(c).value();
}

std::string enter_data_dir_as_owner(const config::Config& config, bool create) {
  auto data = enter_data_dir(config, create);
  if (!data) {
    std::cerr << "petrel: " << data.error().message << "\n";
    std::exit(kExitFailure);
  }
  struct stat st{};
  if (::geteuid() != 0 || ::stat(data->c_str(), &st) != 0 || st.st_uid == 0) return *data;
  if (::setgroups(0, nullptr) != 0 || ::setgid(st.st_gid) != 0 || ::setuid(st.st_uid) != 0) {
    std::perror("petrel: cannot switch to the data directory's owner");
    std::exit(kExitFailure);
  }
  return *data;
}

namespace {
std::string read_line_noecho(const char* prompt) {
  std::fprintf(stderr, "%s", prompt);
  termios old{};
  bool tty = ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
  std::fprintf(stderr, "\n");
  return line;
}
}  // namespace

std::string read_password(bool confirm) {
  if (!::isatty(STDIN_FILENO)) {
    std::string line;
    std::getline(std::cin, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  std::string first = read_line_noecho("Password: ");
  if (confirm && read_line_noecho("Again: ") != first) {
    std::cerr << "petrel: the passwords differ\n";
    std::exit(kExitFailure);
  }
  return first;
}

}  // namespace petrel::app
