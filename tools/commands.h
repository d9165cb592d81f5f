// Each subcommand of the `nibble` CLI adds itself to the app (one file per subcommand).
#pragma once
#include <CLI/CLI.hpp>

namespace nibble::tools {

void add_ir_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_logits_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_devices_command(CLI::App& app);
void add_compile_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_tune_command(CLI::App& app);

}  // namespace nibble::tools
