// Options shared by the commands that run a model (generate, logits, perplexity, bench).
#pragma once
#include <string>

#include <CLI/CLI.hpp>

#include "tools/executor.h"
#include "tools/load_module.h"

namespace nibble::tools {

struct RunOptions {
  std::string model;
  std::string target = "cpu";
  bool target_given = false;  // --target was on the command line (a plan runs on its own target otherwise)
  int threads = 0;
  int64_t n_ctx = 0;
  std::string kv_type = "f16";
  bool profile = false;  // set by commands that offer --profile
  bool verify_weights = false;  // plans: check the weights' checksum at load
};

void add_run_options(CLI::App* c, RunOptions& o);

// Loads the model and builds the executor for the target; needs a tokenizer unless allow_no_tokenizer.
// A GGUF/IR model compiled now, or a plan file loaded (then model.module is null).
struct RunnableModel {
  LoadedModel model;
  std::unique_ptr<Executor> exec;
  bool from_plan = false;
  uint64_t weight_bytes = 0;  // bytes of every weight (bench's bandwidth)
};
RunnableModel open_model(const RunOptions& o, bool need_tokenizer);

}  // namespace nibble::tools
