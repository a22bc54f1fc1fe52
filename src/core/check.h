// Always-on invariant checks for programmer errors (not for user input: see status.h).
// A failed check prints file:line, the condition, a formatted message, and aborts.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

namespace dsv3::detail {
[[noreturn]] inline void check_failed(const char* file, int line, const char* cond, const std::string& msg) {
  std::fprintf(stderr, "dsv3: check failed at %s:%d: %s\n  %s\n", file, line, cond, msg.c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace dsv3::detail

#define DSV3_CHECK(cond, ...)                                                                   \
  do {                                                                                          \
    if (!(cond)) [[unlikely]]                                                                   \
      ::dsv3::detail::check_failed(__FILE__, __LINE__, #cond, ::fmt::format(__VA_ARGS__));      \
  } while (0)

#define DSV3_FAIL(...) ::dsv3::detail::check_failed(__FILE__, __LINE__, "failure", ::fmt::format(__VA_ARGS__))

#ifdef NDEBUG
#define DSV3_DCHECK(cond, ...) \
  do {                         \
  } while (0)
#else
#define DSV3_DCHECK(cond, ...) DSV3_CHECK(cond, __VA_ARGS__)
#endif
