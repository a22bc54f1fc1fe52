#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace dsv3 {
namespace {

LogLevel level_from_env() {
  const char* env = std::getenv("DSV3_LOG");
  if (env == nullptr) return LogLevel::Info;
  if (std::strcmp(env, "debug") == 0) return LogLevel::Debug;
  if (std::strcmp(env, "warn") == 0) return LogLevel::Warn;
  if (std::strcmp(env, "error") == 0) return LogLevel::Error;
  return LogLevel::Info;
}

std::atomic<int>& level_storage() {
  static std::atomic<int> level{int(level_from_env())};
  return level;
}

}  // namespace

LogLevel log_level() { return LogLevel(level_storage().load()); }
void set_log_level(LogLevel level) { level_storage().store(int(level)); }

void log_write(LogLevel level, const std::string& message) {
  static const char* kNames[] = {"debug", "info", "warn", "error"};
  std::fprintf(stderr, "[dsv3 %s] %s\n", kNames[int(level)], message.c_str());
}

}  // namespace dsv3
