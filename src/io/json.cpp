#include "io/json.h"

#include <cmath>
#include <string>
#include <unordered_set>
#include <vector>

namespace dsv3 {

Result<Json> parse_json(std::string_view text, std::string_view source) {
  // A repeated key would silently keep its last value (nlohmann's rule); in a safetensors header
  // or a config that hides a conflict, so it is an error. The keys of each open object are
  // tracked while parsing.
  std::vector<std::unordered_set<std::string>> open_objects;
  std::string duplicate;
  auto track_keys = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Json::parse_event_t::key && !open_objects.empty() && duplicate.empty() &&
               !open_objects.back().insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  // allow_exceptions = false: a parse error yields a discarded value instead of throwing;
  // parse again with exceptions only to recover the message (cheap, error path only).
  Json j = Json::parse(text.begin(), text.end(), track_keys, /*allow_exceptions=*/false);
  if (!j.is_discarded()) {
    if (!duplicate.empty()) {
      if (duplicate.size() > 80) duplicate = duplicate.substr(0, 77) + "...";
      return Status::errorf("{}: invalid JSON: the key \"{}\" appears twice in one object", source, duplicate);
    }
    return j;
  }
  try {
    Json again = Json::parse(text.begin(), text.end());
    static_cast<void>(again);
  } catch (const Json::exception& e) {
    return Status::errorf("{}: invalid JSON: {}", source, e.what());
  }
  return Status::errorf("{}: invalid JSON", source);
}

namespace {

// Renders at most `budget` characters, descending at most 3 levels: nlohmann's dump() is
// recursive, so it is never called on a container (a hostile file may nest 100k levels).
void render(const Json& v, int depth, std::string& out, size_t budget) {
  if (out.size() > budget) return;
  if (v.is_array() || v.is_object()) {
    bool arr = v.is_array();
    out += arr ? '[' : '{';
    if (depth >= 3 && !v.empty()) {
      out += "...";
    } else {
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (out.size() > budget) break;
        if (!first) out += ',';
        first = false;
        if (!arr) out += Json(it.key()).dump(-1, ' ', false, Json::error_handler_t::replace) + ':';
        render(*it, depth + 1, out, budget);
      }
    }
    out += arr ? ']' : '}';
    return;
  }
  out += v.dump(-1, ' ', false, Json::error_handler_t::replace);  // scalar: never throws
}

}  // namespace

std::string json_excerpt(const Json& value) {
  constexpr size_t kMax = 60;
  std::string s;
  render(value, 0, s, kMax);
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

std::optional<int64_t> json_as_int(const Json& v) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) return std::nullopt;
    return v.get<int64_t>();
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    // 2^63 is exactly representable; anything at or beyond it does not fit.
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) >= 0x1p63) return std::nullopt;
    return int64_t(d);
  }
  return std::nullopt;
}

JsonObject::JsonObject(const Json& value, std::string source, std::string path)
    : value_(&value), source_(std::move(source)), path_(std::move(path)) {}

std::string JsonObject::path_of(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

const Json* JsonObject::find(std::string_view key) const {
  if (!value_->is_object()) return nullptr;
  auto it = value_->find(key);
  return it == value_->end() ? nullptr : &*it;
}

bool JsonObject::has(std::string_view key) const {
  const Json* v = find(key);
  return v != nullptr && !v->is_null();
}

Status JsonObject::field_error(std::string_view key, std::string_view requirement) const {
  const Json* v = find(key);
  std::string got = v == nullptr ? "nothing" : json_excerpt(*v);
  return Status::errorf("{}: field '{}' must be {}, got {}", source_, path_of(key), requirement, got);
}

Status JsonObject::missing(std::string_view key) const {
  return Status::errorf("{}: missing required field '{}'", source_, path_of(key));
}

Result<int64_t> JsonObject::get_int(std::string_view key) const {
  const Json* v = find(key);
  if (v == nullptr || v->is_null()) return missing(key);
  auto i = json_as_int(*v);
  if (!i) return field_error(key, "an integer");
  return *i;
}

Result<int64_t> JsonObject::get_int(std::string_view key, int64_t fallback) const {
  return has(key) ? get_int(key) : Result<int64_t>(fallback);
}

Result<double> JsonObject::get_number(std::string_view key) const {
  const Json* v = find(key);
  if (v == nullptr || v->is_null()) return missing(key);
  if (!v->is_number()) return field_error(key, "a number");
  double d = v->get<double>();
  if (!std::isfinite(d)) return field_error(key, "a finite number");
  return d;
}

Result<double> JsonObject::get_number(std::string_view key, double fallback) const {
  return has(key) ? get_number(key) : Result<double>(fallback);
}

Result<bool> JsonObject::get_bool(std::string_view key, bool fallback) const {
  if (!has(key)) return fallback;
  const Json* v = find(key);
  if (!v->is_boolean()) return field_error(key, "true or false");
  return v->get<bool>();
}

Result<std::string> JsonObject::get_string(std::string_view key) const {
  const Json* v = find(key);
  if (v == nullptr || v->is_null()) return missing(key);
  if (!v->is_string()) return field_error(key, "a string");
  return v->get<std::string>();
}

Result<std::string> JsonObject::get_string(std::string_view key, const std::string& fallback) const {
  return has(key) ? get_string(key) : Result<std::string>(fallback);
}

Result<std::optional<JsonObject>> JsonObject::get_object(std::string_view key) const {
  if (!has(key)) return std::optional<JsonObject>();
  const Json* v = find(key);
  if (!v->is_object()) return field_error(key, "an object");
  return std::optional<JsonObject>(JsonObject(*v, source_, path_of(key)));
}

}  // namespace dsv3
