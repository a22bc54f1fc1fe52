// libFuzzer target: arbitrary bytes as config.json. Parsing must never crash; an accepted
// config must survive a write/parse round trip unchanged, and (when small enough to enumerate
// quickly) yield a tensor list with positive shapes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/check.h"
#include "model/config.h"
#include "model/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto cfg = dsv3::parse_model_config(text, "fuzz.json");
  if (!cfg.is_ok()) return 0;
  const dsv3::ModelConfig& c = cfg.value();
  std::string written = dsv3::model_config_to_json(c);
  auto again = dsv3::parse_model_config(written, "rewritten.json");
  DSV3_CHECK(again.is_ok(), "rewritten config rejected: {}\n{}", again.message(), written);
  DSV3_CHECK(dsv3::model_config_to_json(again.value()) == written, "round trip changed the config");
  if ((c.n_layers + c.n_mtp_layers) * (c.n_routed_experts + 1) <= 4096) {
    for (const dsv3::TensorSpec& s : dsv3::expected_tensors(c)) {
      for (int64_t d : s.shape) DSV3_CHECK(d > 0, "{} has dimension {}", s.name, d);
    }
  }
  return 0;
}
