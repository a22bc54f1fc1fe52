// Minimal leveled logger on fmt, to stderr. Level from set_log_level() or DSV3_LOG=debug|info|warn|error.
#pragma once

#include <fmt/format.h>

#include <string>

namespace dsv3 {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

LogLevel log_level();
void set_log_level(LogLevel level);
void log_write(LogLevel level, const std::string& message);

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
  if (level >= log_level()) log_write(level, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace dsv3

#define DSV3_LOG_INFO(...) ::dsv3::log(::dsv3::LogLevel::Info, __VA_ARGS__)
#define DSV3_LOG_WARN(...) ::dsv3::log(::dsv3::LogLevel::Warn, __VA_ARGS__)
#define DSV3_LOG_DEBUG(...) ::dsv3::log(::dsv3::LogLevel::Debug, __VA_ARGS__)
#define DSV3_LOG_ERROR(...) ::dsv3::log(::dsv3::LogLevel::Error, __VA_ARGS__)
