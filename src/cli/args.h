// Small argument helpers shared by the subcommands.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace dsv3::cli {

// "1,2,3" (spaces allowed; also a JSON-style "[1, 2, 3]") -> token ids. Empty lists and
// anything that is not a non-negative 32-bit integer are errors.
Result<std::vector<int32_t>> parse_token_list(const std::string& text);

// Applies --threads: 0 keeps the default (OMP_NUM_THREADS or the number of cores).
void apply_threads(int threads);

}  // namespace dsv3::cli
