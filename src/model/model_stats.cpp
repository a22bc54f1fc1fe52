#include "model/model_stats.h"

#include <unistd.h>

#include <cstdio>

#include "model/loader.h"

namespace dsv3 {

int64_t ParamBreakdown::total() const {
  int64_t t = 0;
  for (const auto& [name, n] : items()) t += n;
  return t;
}

std::vector<std::pair<const char*, int64_t>> ParamBreakdown::items() const {
  return {{"embedding", embedding}, {"head", head},         {"attention", attention},
          {"norms", norms},         {"dense_mlp", dense_mlp}, {"routed_experts", routed_experts},
          {"shared_experts", shared_experts}, {"router", router}, {"mtp_proj", mtp_proj}};
}

namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// The bucket of a tensor; `name` is an HF name from for_each_tensor.
int64_t* bucket(ParamBreakdown& b, const TensorSpec& s) {
  switch (s.role) {
    case TensorRole::Embedding: return &b.embedding;
    case TensorRole::Head: return &b.head;
    case TensorRole::RouterGate:
    case TensorRole::RouterBias: return &b.router;
    case TensorRole::Norm: return contains(s.name, ".self_attn.") ? &b.attention : &b.norms;
    case TensorRole::Linear: break;
  }
  if (contains(s.name, ".self_attn.")) return &b.attention;
  if (contains(s.name, ".mlp.experts.")) return &b.routed_experts;
  if (contains(s.name, ".mlp.shared_experts.")) return &b.shared_experts;
  if (contains(s.name, ".eh_proj.")) return &b.mtp_proj;
  return &b.dense_mlp;
}

}  // namespace

ModelStats compute_model_stats(const ModelConfig& cfg) {
  ModelStats st;
  for (const TensorSpec& s : expected_tensors(cfg)) {
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    if (s.optional) {  // MTP copies of the shared embedding / head
      st.mtp_copies += n;
      continue;
    }
    ParamBreakdown& all = s.mtp ? st.mtp : st.params;
    ParamBreakdown& act = s.mtp ? st.mtp_active : st.active;
    *bucket(all, s) += n;
    if (s.role == TensorRole::Embedding) {
      *bucket(act, s) += cfg.dim;  // one row is read per token
    } else if (s.expert < 0) {
      *bucket(act, s) += n;
    }
  }
  // All routed experts of a layer have the same size, so K of E of them is exactly K/E.
  if (cfg.n_routed_experts > 0) {
    st.active.routed_experts = st.params.routed_experts / cfg.n_routed_experts * cfg.n_activated_experts;
    st.mtp_active.routed_experts = st.mtp.routed_experts / cfg.n_routed_experts * cfg.n_activated_experts;
  }
  if (cfg.tie_word_embeddings) st.active.head = cfg.vocab_size * cfg.dim;  // the embedding, used as head
  st.kv_latent_values = cfg.n_layers * cfg.kv_cache_dim();
  st.kv_mha_values = cfg.n_layers * cfg.n_heads * (cfg.qk_head_dim() + cfg.v_head_dim);
  st.kv_latent_values_mtp = cfg.n_mtp_layers * cfg.kv_cache_dim();
  return st;
}

DiskStats compute_disk_stats(const Checkpoint& ck) {
  DiskStats d;
  d.file_bytes = ck.total_file_bytes();
  d.n_files = int64_t(ck.files().size());
  for (const auto& f : ck.files()) {
    for (const TensorInfo& t : f->tensors()) {
      std::string dt(dtype_name(t.dtype));
      d.bytes_by_dtype[dt] += t.nbytes;
      d.tensors_by_dtype[dt] += 1;
      d.n_tensors += 1;
    }
  }
  return d;
}

int64_t resident_memory_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long long size = 0, resident = 0;
  int got = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  if (got != 2) return -1;
  return int64_t(resident) * int64_t(sysconf(_SC_PAGESIZE));
}

}  // namespace dsv3
