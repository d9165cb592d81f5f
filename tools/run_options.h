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
  int threads = 0;
  int64_t n_ctx = 0;
  std::string kv_type = "f16";
  bool profile = false;  // set by commands that offer --profile
};

void add_run_options(CLI::App* c, RunOptions& o);

// Loads the model and builds the executor for the target; needs a tokenizer unless allow_no_tokenizer.
struct RunnableModel {
  LoadedModel model;
  std::unique_ptr<Executor> exec;
};
RunnableModel open_model(const RunOptions& o, bool need_tokenizer);

}  // namespace nibble::tools
