#include "tools/run_options.h"

#include "support/error.h"
#include "tools/plan.h"

namespace nibble::tools {

void add_run_options(CLI::App* c, RunOptions& o) {
  c->add_option("model", o.model, "MODEL.gguf, a compiled PLAN.nplan, or IR text")->required();
  c->add_option("--target", o.target,
                "cpu (LLVM-JIT kernels), vulkan, vulkan:N (a Vulkan device), or ref (the reference executor); a plan "
                "runs on the target it was compiled for")
      ->capture_default_str()
      ->each([&o](const std::string&) { o.target_given = true; });
  c->add_option("--threads", o.threads, "worker threads (0: all cores; a plan: the count it was compiled for)");
  c->add_option("--ctx", o.n_ctx, "KV cache length (0: min(model context, 2048); fixed in a plan)");
  c->add_option("--kv-type", o.kv_type, "KV cache element type: f16 (as llama.cpp) or f32 (fixed in a plan)")
      ->capture_default_str();
  c->add_flag("--verify-weights", o.verify_weights, "plans: verify the weights' checksum at load");
}

namespace {

uint64_t module_weight_bytes(const Module& m) {
  uint64_t total = 0;
  for (const WeightDecl& w : m.weights) {
    const int64_t k = w.type.dims.back().value;
    total += uint64_t(row_bytes(w.type.dtype, k) * (w.type.num_elements() / k));
  }
  return total;
}

}  // namespace

RunnableModel open_model(const RunOptions& o, bool need_tokenizer) {
  RunnableModel r;
  if (o.threads < 0) fail("--threads {} (expected >= 0; 0: all cores)", o.threads);
  if (is_plan_file(o.model)) {
    PlanOpenOptions po;
    po.target = o.target_given ? o.target : "";
    po.threads = o.threads;
    po.profile = o.profile;
    po.verify_weights = o.verify_weights;
    OpenedPlan p = open_plan(o.model, po);
    if (o.n_ctx > p.exec->n_ctx())
      fail("{}: needs a context of {} tokens; the plan was compiled for {} (nibble compile --ctx {})", o.model, o.n_ctx,
           p.exec->n_ctx(), o.n_ctx);
    if (need_tokenizer && !p.tokenizer) fail("{}: the plan has no tokenizer (compile it from a GGUF model)", o.model);
    r.exec = std::move(p.exec);
    r.model.tokenizer = std::move(p.tokenizer);
    r.from_plan = true;
    r.weight_bytes = p.meta.value("memory", nlohmann::json::object()).value("weights", uint64_t(0));
    return r;
  }
  r.model = load_model(o.model, LoadOptions{o.n_ctx, o.kv_type});
  if (need_tokenizer && !r.model.tokenizer) fail("{}: has no tokenizer (give a GGUF model)", o.model);
  ExecutorOptions eo;
  eo.target = o.target;
  eo.threads = o.threads;
  eo.profile = o.profile;
  r.weight_bytes = module_weight_bytes(*r.model.module);
  r.exec = make_executor(*r.model.module, eo);
  return r;
}

}  // namespace nibble::tools
