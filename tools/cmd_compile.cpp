// nibble compile: a GGUF model compiled once into an executable plan (.nplan) for a target.
#include <chrono>

#include <fmt/format.h>

#include "support/error.h"
#include "tools/commands.h"
#include "tools/plan.h"
#include "tools/tuning_db.h"

namespace nibble::tools {

namespace {

struct CompileOptions {
  std::string model, output, target = "cpu", tuning_db, kv_type = "f16";
  int threads = 0;
  int64_t n_ctx = 0, max_tokens = 512;
  bool quiet = false, no_tuning = false;
};

void run_compile(const CompileOptions& o) {
  if (is_plan_file(o.model)) fail("{}: already a plan; compile takes the GGUF model", o.model);
  if (o.max_tokens < 1) fail("compile: --max-tokens must be >= 1");
  LoadedModel lm = load_model(o.model, LoadOptions{o.n_ctx, o.kv_type});
  ExecutorOptions eo;
  eo.target = o.target;
  eo.threads = o.threads;
  eo.max_tokens = o.max_tokens;
  // Measured schedules for this device where `nibble tune` left some; the heuristic elsewhere.
  std::string db = o.no_tuning ? "" : o.tuning_db.empty() ? default_tuning_db_path() : o.tuning_db;
  if (!db.empty()) eo.tuning = load_tuning_table(db, o.target);
  if (!eo.tuning || eo.tuning->by_signature.empty()) db.clear();
  CompileReport r = compile_plan(lm, eo, o.model, db, o.output);
  if (!o.quiet) fmt::print(stderr, "{}: {}\n", o.output, r.summary());
}

}  // namespace

void add_compile_command(CLI::App& app) {
  auto o = std::make_shared<CompileOptions>();
  CLI::App* c = app.add_subcommand("compile", "Compile a model into an executable plan for a target");
  c->add_option("model", o->model, "MODEL.gguf")->required();
  c->add_option("-o,--output", o->output, "the plan file to write (e.g. MODEL.nplan)")->required();
  c->add_option("--target", o->target, "cpu (this machine's CPU features), vulkan or vulkan:N")->capture_default_str();
  c->add_option("--threads", o->threads, "cpu: the thread count the plan runs with by default (0: all cores)");
  c->add_option("--ctx", o->n_ctx, "KV cache length (0: min(model context, 2048))");
  c->add_option("--kv-type", o->kv_type, "KV cache element type: f16 or f32")->capture_default_str();
  c->add_option("--max-tokens", o->max_tokens, "tokens per call the buffers are planned for (longer prompts run in chunks)")
      ->capture_default_str();
  c->add_option("--tuning-db", o->tuning_db, "schedules measured by nibble tune (default: the one tune writes by default)");
  c->add_flag("--no-tuning", o->no_tuning, "heuristic schedules only, whatever the tuning database holds");
  c->add_flag("-q,--quiet", o->quiet, "print nothing on success");
  c->callback([o] { run_compile(*o); });
}

}  // namespace nibble::tools
