// Loading a Hugging Face DeepSeek-V3-family checkpoint into ModelWeights.
//
// for_each_tensor() is the one list of the model's tensors (HF names, shapes, roles) for a
// config: loading, validation, parameter counting, random checkpoints and export all walk it.
// load_model() reads config.json, opens the safetensors files (memory-mapped), checks every
// tensor against that list (missing, extra, shape, dtype, FP8 scales) and fills ModelWeights
// with views into the mappings. Any problem is one error naming the file and the tensor.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "model/config.h"
#include "model/weights.h"

namespace dsv3 {

enum class TensorRole {
  Linear,      // a projection matrix (rows = out, cols = in)
  Norm,        // an RMSNorm weight vector
  Embedding,   // embed_tokens (vocab, dim)
  Head,        // lm_head / shared_head.head (vocab, dim)
  RouterGate,  // mlp.gate.weight (n_routed_experts, dim)
  RouterBias,  // mlp.gate.e_score_correction_bias (n_routed_experts)
};

struct TensorSpec {
  std::string name;            // HF name, e.g. "model.layers.3.mlp.experts.7.up_proj.weight"
  std::vector<int64_t> shape;  // (rows, cols) for matrices, (n) for vectors
  TensorRole role = TensorRole::Linear;
  int64_t layer = -1;          // decoder layer index (main 0..L-1, MTP L..), -1 for top level
  bool mtp = false;             // part of a multi-token-prediction layer
  int64_t expert = -1;         // routed expert index, -1 otherwise
  bool optional = false;       // may be absent (MTP copies of embed_tokens / shared_head.head)
  bool fp8_allowed = false;    // may be stored F8_E4M3 with a "<name>_scale_inv" companion
  bool is_matrix() const { return shape.size() == 2; }
};

// Where a tensor goes inside ModelWeights: exactly one of the two is set (when visiting with
// weights), both null otherwise.
struct TensorSlot {
  WeightMatrix* matrix = nullptr;
  std::vector<float>* vector = nullptr;
};

using TensorVisitor = std::function<void(const TensorSpec&, TensorSlot)>;

// Visits every tensor of the model in a fixed order: embed_tokens, layers 0..L+n_mtp-1 (norms,
// attention, MLP or router + experts + shared experts, MTP extras), final norm, lm_head
// (absent when tie_word_embeddings). With `weights`, it is first shaped for cfg (layers, experts)
// and each slot points at the field the tensor fills.
void for_each_tensor(const ModelConfig& cfg, ModelWeights* weights, const TensorVisitor& visit);
std::vector<TensorSpec> expected_tensors(const ModelConfig& cfg);

// FP8 companions: "X.weight" -> "X.weight_scale_inv", shape (ceil(rows/128), ceil(cols/128)).
std::string fp8_scale_name(const std::string& weight_name);
std::vector<int64_t> fp8_scale_shape(int64_t rows, int64_t cols);

// A loaded model: config, the open checkpoint (owning the mappings) and the weight views.
// Move-only; views stay valid across moves (they point into mappings and heap buffers).
struct LoadedModel {
  ModelConfig config;
  Checkpoint checkpoint;
  ModelWeights weights;
  // Copies of tensors whose file offset is not a multiple of their element size (legal in
  // safetensors, rare in practice): kernels and float* views need natural alignment.
  std::vector<std::vector<uint64_t>> aligned_copies;

  LoadedModel() = default;
  LoadedModel(LoadedModel&&) = default;
  LoadedModel& operator=(LoadedModel&&) = default;
};

// Reads DIR/config.json and the checkpoint in DIR (see Checkpoint::open for layouts).
Result<LoadedModel> load_model(const std::string& dir);
// Validates `checkpoint` against `cfg` and fills the weights (the checkpoint is moved in).
Result<LoadedModel> load_model(const ModelConfig& cfg, Checkpoint checkpoint);

}  // namespace dsv3
