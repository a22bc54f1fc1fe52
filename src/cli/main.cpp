// `dsv3 <command> [options]`: dispatches to the subcommands registered in src/cli/*.cpp.
#include <algorithm>
#include <cstdio>

#include "cli/command.h"

namespace dsv3::cli {

std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

int fail(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "dsv3 %s: error: %s\n", command.c_str(), message.c_str());
  return 1;
}

}  // namespace dsv3::cli

int main(int argc, char** argv) {
  using namespace dsv3::cli;
  CLI::App app{"dsv3: the DeepSeek-V3 system in one C++ engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "dsv3 0.1.0");
  auto& commands = command_registry();
  std::sort(commands.begin(), commands.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, RunFn>> runs;
  for (const auto& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    runs.emplace_back(sub, c.setup(*sub));
  }
  CLI11_PARSE(app, argc, argv);
  for (auto& [sub, run] : runs) {
    if (sub->parsed()) return run();
  }
  return 1;
}
