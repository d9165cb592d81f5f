// What the CLI runs a model on: the reference interpreter or a compiled backend. One interface so
// generate, logits and perplexity work the same on every target.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir/ir.h"

namespace nibble::tools {

class Executor {
 public:
  virtual ~Executor() = default;
  // Evaluates tokens at positions; returns logits [tokens.size() x n_vocab].
  virtual std::vector<float> forward(const std::vector<int32_t>& tokens, const std::vector<int32_t>& pos) = 0;
  virtual void reset() = 0;  // clears the KV cache
  int64_t n_vocab() const { return n_vocab_; }
  int64_t n_ctx() const { return n_ctx_; }

 protected:
  int64_t n_vocab_ = 0, n_ctx_ = 0;
};

struct ExecutorOptions {
  std::string target = "ref";
  int threads = 0;
};

// Runs the target's pass pipeline on the module, then builds its executor. The module must outlive it.
std::unique_ptr<Executor> make_executor(Module& m, const ExecutorOptions& opts);

}  // namespace nibble::tools
