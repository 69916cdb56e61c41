// log.cc: structured log lines through one spdlog logger.
#include "base/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>

namespace petrel::base::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

std::shared_ptr<spdlog::logger>& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto l = std::make_shared<spdlog::logger>("petrel", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %v", spdlog::pattern_time_type::utc);
    l->set_level(spdlog::level::trace);
    return l;
  }();
  return instance;
}

}  // namespace

Result<Level> parse_level(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  return permanent_error("unknown log level \"" + std::string(name) + "\" (debug, info, warn, error)");
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

Status init(Level level, const std::string& file) {
  g_level = static_cast<int>(level);
  if (file.empty()) return {};
  try {
    auto l = std::make_shared<spdlog::logger>("petrel", std::make_shared<spdlog::sinks::basic_file_sink_mt>(file));
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %v", spdlog::pattern_time_type::utc);
    l->set_level(spdlog::level::trace);
    l->flush_on(spdlog::level::trace);
    logger() = l;
  } catch (const spdlog::spdlog_ex& e) {
    return temporary_error(std::string("cannot open log file: ") + e.what());
  }
  return {};
}

bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void write(Level level, std::string_view event, std::string_view fields) {
  try {
    if (fields.empty()) {
      logger()->info("{} {}", level_name(level), event);
    } else {
      logger()->info("{} {} {}", level_name(level), event, fields);
    }
  } catch (...) {
    // A log line is never worth failing the caller for.
  }
}

void flush() {
  try {
    logger()->flush();
  } catch (...) {
  }
}

}  // namespace petrel::base::log
