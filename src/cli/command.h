// Subcommands of the `dsv3` binary. Each lives in its own file and registers itself with
// DSV3_COMMAND; main.cpp only dispatches. A command's setup() declares its options on the
// CLI11 subcommand and returns the function that runs it (exit code: 0 ok, non-zero error).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace dsv3::cli {

using RunFn = std::function<int()>;

struct Command {
  std::string name;
  std::string help;
  std::function<RunFn(CLI::App&)> setup;
};

std::vector<Command>& command_registry();

struct CommandRegistrar {
  explicit CommandRegistrar(Command c) { command_registry().push_back(std::move(c)); }
};

// Prints "dsv3 <command>: error: <message>" to stderr and returns 1.
int fail(const std::string& command, const std::string& message);

}  // namespace dsv3::cli

#define DSV3_CLI_CONCAT2(a, b) a##b
#define DSV3_CLI_CONCAT(a, b) DSV3_CLI_CONCAT2(a, b)
#define DSV3_COMMAND(name, help, setup_fn)                                                  \
  static ::dsv3::cli::CommandRegistrar DSV3_CLI_CONCAT(dsv3_command_registrar_, __LINE__)( \
      ::dsv3::cli::Command{name, help, setup_fn})
