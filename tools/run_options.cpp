#include "tools/run_options.h"

#include "support/error.h"

namespace nibble::tools {

void add_run_options(CLI::App* c, RunOptions& o) {
  c->add_option("model", o.model, "MODEL.gguf (or IR text)")->required();
  c->add_option("--target", o.target, "cpu (LLVM-JIT kernels), vulkan, vulkan:N (a Vulkan device), or ref (the reference executor)")->capture_default_str();
  c->add_option("--threads", o.threads, "worker threads (0: all cores)");
  c->add_option("--ctx", o.n_ctx, "KV cache length (0: min(model context, 2048))");
  c->add_option("--kv-type", o.kv_type, "KV cache element type: f16 (as llama.cpp) or f32")->capture_default_str();
}

RunnableModel open_model(const RunOptions& o, bool need_tokenizer) {
  RunnableModel r;
  r.model = load_model(o.model, LoadOptions{o.n_ctx, o.kv_type});
  if (need_tokenizer && !r.model.tokenizer) fail("{}: has no tokenizer (give a GGUF model)", o.model);
  ExecutorOptions eo;
  eo.target = o.target;
  eo.threads = o.threads;
  eo.profile = o.profile;
  r.exec = make_executor(*r.model.module, eo);
  return r;
}

}  // namespace nibble::tools
