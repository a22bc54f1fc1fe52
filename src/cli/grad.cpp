// `dsv3 grad --model DIR --tokens 1,2,3 --out grads.safetensors`: the gradient of the mean
// next-token cross-entropy of the main model on one token sequence w.r.t. every main-model
// weight, written as float32 under the weights' Hugging Face names.
#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "io/safetensors.h"
#include "model/loader.h"
#include "train/grad.h"

namespace dsv3::cli {
namespace {

struct Opts {
  std::string model, out;
  std::vector<int32_t> tokens;
};

RunFn setup_grad(CLI::App& app) {
  auto opts = std::make_shared<Opts>();
  app.add_option("--model", opts->model, "model directory (config.json + safetensors)")->required();
  app.add_option("--tokens", opts->tokens, "token ids t_1..t_n (n >= 2), comma separated")
      ->required()
      ->delimiter(',');
  app.add_option("--out", opts->out, "output safetensors file")->required();
  return [opts] {
    auto m = load_model(opts->model);
    if (!m.is_ok()) return fail("grad", m.message());
    auto g = main_model_gradients(m->config, m->weights, opts->tokens);
    if (!g.is_ok()) return fail("grad", g.message());
    std::vector<TensorData> tensors;
    for (const auto& t : g->tensors) {
      tensors.push_back({t.name, DType::F32, t.shape,
                         {reinterpret_cast<const uint8_t*>(t.grad.data()), t.grad.size() * sizeof(float)}});
    }
    const std::map<std::string, std::string> meta = {{"loss", fmt::format("{:.9g}", g->loss)},
                                                     {"tokens", std::to_string(opts->tokens.size())}};
    Status st = write_safetensors(opts->out, tensors, meta);
    if (!st.is_ok()) return fail("grad", st.message());
    fmt::print("loss {:.9g} over {} predictions; {} gradient tensors written to {}\n", g->loss,
               opts->tokens.size() - 1, tensors.size(), opts->out);
    return 0;
  };
}

DSV3_COMMAND("grad", "gradient of the next-token loss on given tokens w.r.t. every main-model weight", setup_grad);

}  // namespace
}  // namespace dsv3::cli
