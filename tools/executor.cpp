#include "tools/executor.h"

#include "ir/interp/interpreter.h"
#include "passes/pass.h"
#include "passes/pipeline.h"
#include "support/error.h"

namespace nibble::tools {

namespace {

class RefExecutor : public Executor {
 public:
  explicit RefExecutor(const Module& m) : interp_(m) {
    n_vocab_ = m.attrs.int_or("n_vocab", 0);
    n_ctx_ = m.attrs.int_or("n_ctx", 0);
  }
  std::vector<float> forward(const std::vector<int32_t>& tokens, const std::vector<int32_t>& pos) override {
    return interp_.forward(tokens, pos);
  }
  void reset() override { interp_.reset_state(); }

 private:
  Interpreter interp_;
};

}  // namespace

std::unique_ptr<Executor> make_executor(Module& m, const ExecutorOptions& opts) {
  PassOptions po;
  po.target = opts.target;
  po.threads = opts.threads;
  PassManager pm(po);
  pm.add_pipeline(default_pipeline(opts.target));
  pm.run(m);
  if (opts.target == "ref") return std::make_unique<RefExecutor>(m);
  fail("unknown target '{}' (expected ref, cpu or vulkan)", opts.target);
}

}  // namespace nibble::tools
