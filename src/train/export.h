// Export of a training checkpoint (train/checkpoint.h) as a Hugging Face DeepSeek-V3 model
// directory: config.json, model.safetensors (or shards + model.safetensors.index.json) under
// HF names, and the tokenizer files. Tensors follow for_each_tensor (model/loader.h):
//   F32:  everything F32.
//   BF16: everything BF16 (round-to-nearest-even) except router biases.
//   FP8:  the projection matrices inside decoder layers (attention, dense MLP, routed and
//         shared experts, MTP layers too) as E4M3 with a "<name>_scale_inv" F32 tensor of
//         128x128 block scales (scale = amax/448, q = RNE(w/scale) saturating to ±448; an
//         all-zero block gets scale 1), quantization_config in config.json; embeddings,
//         heads, norms, router gate weights and eh_proj BF16 (DeepSeek's published layout).
// Router biases are always F32 "mlp.gate.e_score_correction_bias". MTP layer n_layers+k gets
// copies of embed_tokens and shared_head.head, as DeepSeek's checkpoints store them.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace dsv3 {

enum class ExportDType { F32, BF16, FP8 };

Result<ExportDType> parse_export_dtype(const std::string& name);

struct ExportOptions {
  std::string checkpoint_dir;  // a step-NNNNNN directory
  std::string out_dir;
  std::string tokenizer_dir;   // optional: tokenizer.json (+ tokenizer_config.json) copied
  ExportDType dtype = ExportDType::BF16;
  int shards = 1;
};

struct ExportStats {
  int64_t tensors = 0;
  int64_t bytes = 0;  // tensor payload bytes written
};

Result<ExportStats> export_hf_model(const ExportOptions& opt);

// Block FP8 quantization of a (rows, cols) row-major matrix: q (rows·cols codes) and
// scale_inv (ceil(rows/128) · ceil(cols/128) multiplicative dequantization scales).
void quantize_e4m3_blocks(const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scale_inv);

}  // namespace dsv3
