// Errors as values for everything a user or the disk can cause (bad files, bad configs, bad
// requests). Result<T> is shaped like std::expected (not available in g++ 12's C++20 mode).
// Library code returns these; the CLI prints them and exits non-zero, the server answers 4xx.
#pragma once

#include <fmt/format.h>

#include <string>
#include <utility>
#include <variant>

namespace dsv3 {

class Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) { return Status(std::move(message)); }
  template <typename... Args>
  static Status errorf(fmt::format_string<Args...> f, Args&&... args) {
    return Status(fmt::format(f, std::forward<Args>(args)...));
  }
  bool is_ok() const { return !failed_; }
  explicit operator bool() const { return is_ok(); }
  const std::string& message() const { return message_; }
  // Prefixes the message with context, e.g. the file being read.
  Status with_context(const std::string& context) const {
    return failed_ ? Status(context + ": " + message_) : *this;
  }

 private:
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
  bool failed_ = false;
  std::string message_;
};

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}                   // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {             // NOLINT: implicit by design
    if (std::get<Status>(v_).is_ok()) v_ = Status::error("internal: Result built from an ok Status");
  }
  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<1>(v_);
  }
  const std::string& message() const { return status().message(); }

 private:
  std::variant<T, Status> v_;
};

inline const Status& to_status(const Status& s) { return s; }
template <typename T>
const Status& to_status(const Result<T>& r) { return r.status(); }

}  // namespace dsv3

// Propagates a failed Status (or the Status of a failed Result) to the caller.
#define DSV3_TRY(expr)                                          \
  do {                                                          \
    const auto& dsv3_try_value_ = (expr);                       \
    if (!dsv3_try_value_.is_ok()) return ::dsv3::to_status(dsv3_try_value_); \
  } while (0)
