// `dsv3 plot`: PNG charts (loss, validation loss, MaxVio, tokens/s, learning rate) of one or
// more training runs' metrics.jsonl, overlaid with a legend.
#include <memory>

#include "cli/command.h"
#include "train/plot.h"

namespace dsv3::cli {
namespace {

struct PlotOpts {
  std::string out;
  std::vector<std::string> files;
};

RunFn setup_plot(CLI::App& app) {
  auto o = std::make_shared<PlotOpts>();
  app.add_option("--out", o->out, "directory for the PNG files")->required();
  app.add_option("metrics", o->files, "metrics.jsonl files of training runs")->required();
  return [o] {
    Result<std::vector<std::string>> written = plot_metrics(o->files, o->out);
    if (!written.is_ok()) return fail("plot", written.message());
    if (written->empty()) return fail("plot", "no metrics records found");
    for (const std::string& f : *written) std::printf("wrote %s\n", f.c_str());
    return 0;
  };
}

DSV3_COMMAND("plot", "plot training metrics (metrics.jsonl) as PNG charts", setup_plot);

}  // namespace
}  // namespace dsv3::cli
