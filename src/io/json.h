// A thin layer over nlohmann::json for untrusted input (config.json, safetensors headers,
// index files, HTTP bodies): parsing returns Result instead of throwing, and typed getters
// produce errors that name the source and the JSON path, e.g.
//   config.json: field 'hidden_size' must be a positive integer, got "abc"
// No nlohmann exception escapes this module.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace dsv3 {

using Json = nlohmann::json;

// Parses `text`; `source` (a file name) prefixes error messages.
Result<Json> parse_json(std::string_view text, std::string_view source);

// A short rendering of a value for error messages (long values are cut with "...").
std::string json_excerpt(const Json& value);

// A JSON object together with where it came from, for typed access with good errors.
// Getters with a default return it when the key is absent or null.
class JsonObject {
 public:
  // `value` must outlive this object. `path` is the JSON path of `value` ("" for the root).
  JsonObject(const Json& value, std::string source, std::string path = "");

  const Json& json() const { return *value_; }
  const std::string& source() const { return source_; }
  // Path of `key` below this object, e.g. "rope_scaling.factor".
  std::string path_of(std::string_view key) const;

  // Returns nullptr when the key is absent; a present null is returned as a null Json.
  const Json* find(std::string_view key) const;
  // True when the key is present and not null.
  bool has(std::string_view key) const;

  Result<int64_t> get_int(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key, int64_t fallback) const;
  // Accepts JSON integers and floats ("ints where floats are expected are read as floats").
  Result<double> get_number(std::string_view key) const;
  Result<double> get_number(std::string_view key, double fallback) const;
  Result<bool> get_bool(std::string_view key, bool fallback) const;
  Result<std::string> get_string(std::string_view key) const;
  Result<std::string> get_string(std::string_view key, const std::string& fallback) const;
  // The member as an object (absent or null: std::nullopt; any other non-object: error).
  Result<std::optional<JsonObject>> get_object(std::string_view key) const;

  // "<source>: field '<path>' must be <requirement>, got <value>".
  Status field_error(std::string_view key, std::string_view requirement) const;
  // "<source>: missing required field '<path>'".
  Status missing(std::string_view key) const;

 private:
  const Json* value_;
  std::string source_;
  std::string path_;
};

// Interprets a JSON value as an integer: integers, and floats with an integral value in range.
std::optional<int64_t> json_as_int(const Json& v);

}  // namespace dsv3
