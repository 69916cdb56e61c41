// log.cc: structured log lines through one spdlog logger.
#include "base/log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>

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

// Appends each line to a descriptor with one write(2): lines of concurrent writers never
// interleave (O_APPEND), and nothing is buffered that a crash could lose.
class DescriptorSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit DescriptorSink(int fd) : fd_(fd) {}
  ~DescriptorSink() override { ::close(fd_); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // a lost log line never fails the caller
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  void flush_() override {}

 private:
  int fd_;
};

void install(std::shared_ptr<spdlog::sinks::sink> sink) {
  auto l = std::make_shared<spdlog::logger>("petrel", std::move(sink));
  l->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %v", spdlog::pattern_time_type::utc);
  l->set_level(spdlog::level::trace);
  l->flush_on(spdlog::level::trace);
  logger() = l;
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
    install(std::make_shared<spdlog::sinks::basic_file_sink_mt>(file));
  } catch (const spdlog::spdlog_ex& e) {
    return temporary_error(std::string("cannot open log file: ") + e.what());
  }
  return {};
}

Status init_descriptor(Level level, int fd) {
  g_level = static_cast<int>(level);
  try {
    install(std::make_shared<DescriptorSink>(fd));
  } catch (const spdlog::spdlog_ex& e) {
    ::close(fd);
    return temporary_error(std::string("cannot log to the log file: ") + e.what());
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
