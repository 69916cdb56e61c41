// base/log.h: structured logging, one line per event.
//
// Every line is "TIMESTAMP LEVEL EVENT key=value ...": the event name is a dotted word
// ("smtp.connect", "queue.accepted") and the fields are logfmt pairs, so one grep on a queue id
// or a client address follows a message or a session. Values that come from peers must pass
// through base::log_escape() (strings.h) before they reach a line.
// Thread: any. Backed by spdlog; a failure to write a log line never fails the caller.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

#include "base/result.h"

namespace petrel::base::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// Parses "debug" | "info" | "warn" | "error".
Result<Level> parse_level(std::string_view name);
std::string_view level_name(Level level);

// Sends lines to `file` (appending), or to stderr when `file` is empty. Call once at start-up;
// before it, lines go to stderr at info level.
Status init(Level level, const std::string& file);
// The same, appending to an open descriptor, which the logger then owns (the server opens its
// log file before it drops privileges: app/data_dir.h).
Status init_descriptor(Level level, int fd);
bool enabled(Level level);
void write(Level level, std::string_view event, std::string_view fields);
void flush();

}  // namespace petrel::base::log

// PETREL_LOG(kInfo, "smtp.connect", "client={} port={}", ip, port): formats only when enabled.
#define PETREL_LOG(level, event, ...)                                                        \
  do {                                                                                       \
    if (::petrel::base::log::enabled(::petrel::base::log::Level::level)) {                   \
      ::petrel::base::log::write(::petrel::base::log::Level::level, (event),                 \
                                 ::fmt::format(__VA_ARGS__));                                \
    }                                                                                        \
  } while (false)
