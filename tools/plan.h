// Executable plans (.nplan): `nibble compile` writes one, every command that runs a model opens one
// as it opens a GGUF. A plan holds the final IR, each kernel's schedule, the buffer plan, the
// compiled code (ELF objects for cpu, SPIR-V for vulkan), the weights in their chosen layouts
// (page-aligned, memory-mapped at load) and the tokenizer with the model's metadata. Loading one
// runs no pass and no codegen. Layout of the file: docs/plans.md.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "frontends/tokenizer/tokenizer.h"
#include "tools/executor.h"
#include "tools/load_module.h"

namespace nibble::tools {

struct CompileReport {
  double passes_ms = 0, codegen_ms = 0, write_ms = 0;
  uint64_t file_bytes = 0;
  int kernels = 0, tuned = 0, products = 0;  // JIT kernels / SPIR-V modules; weight products tuned, in all
  std::string summary() const;
};

// Compiles a loaded GGUF model (lm.module is transformed in place) for opts.target and writes the
// plan to `out`. `source` names the model in the plan; `tuning_db` the database used ("" none).
CompileReport compile_plan(LoadedModel& lm, const ExecutorOptions& opts, const std::string& source,
                           const std::string& tuning_db, const std::string& out);

struct PlanOpenOptions {
  std::string target;        // "" : the plan's own; else must match it (cpu, vulkan, vulkan:N)
  int threads = 0;           // cpu: 0 = the threads it was compiled for
  bool profile = false;
  bool poison = false;       // tests
  bool validation = false;   // vulkan
  bool verify_weights = false;
  // Tests: pretend this CPU has only these features (empty: detect).
  std::set<std::string> cpu_features_override;
};

struct OpenedPlan {
  std::unique_ptr<Executor> exec;
  std::unique_ptr<Tokenizer> tokenizer;  // null when the model had none
  nlohmann::json meta;
  double load_ms = 0;
};

bool is_plan_file(const std::string& path);
// Checks the file (checksums, version, this machine's CPU features or Vulkan device) and loads it;
// throws nibble::Error saying what is wrong and to recompile from the GGUF when it cannot run here.
OpenedPlan open_plan(const std::string& path, const PlanOpenOptions& o);

// The "meta" and "plan" sections, for `nibble inspect`.
struct PlanContents {
  nlohmann::json meta, plan;
  std::vector<std::pair<std::string, uint64_t>> sections;  // name, bytes
  uint64_t file_bytes = 0;
};
PlanContents read_plan_contents(const std::string& path, bool verify_weights);

}  // namespace nibble::tools
