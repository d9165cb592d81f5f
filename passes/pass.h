// A pass transforms a module in place. Passes register by name with a one-line summary;
// the PassManager runs a pipeline, verifying after every pass.
#pragma once
#include <functional>
#include <iosfwd>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ir/ir.h"
#include "passes/tuning.h"

namespace nibble {

// What passes may consult: the target and its options (layouts and tiles differ per target).
struct PassOptions {
  std::string target = "ref";  // ref, cpu, vulkan
  int threads = 1;             // worker threads the plan will run on
  int64_t max_tokens = 512;    // tokens per call the buffers are planned for (longer prompts are chunked)
  // The CPU the code is compiled for (filled by the driver from codegen's host detection):
  std::set<std::string> cpu_features;  // LLVM names: "avx2", "fma", "avx512f", "avx512bw", "avx512vnni", ...
  int vector_bits = 256;               // widest vectors worth using (512 with AVX-512, 256 with AVX2, 128)
  int64_t l2_bytes = 1 << 20;          // per-core L2, for tile choices
  int64_t min_split_weight_bytes = 64 << 10;  // smaller weight products run as one task (select-tiles)
  // Measured schedules (nibble tune) that select-tiles prefers to its heuristic; null: none.
  std::shared_ptr<const TuningTable> tuning;
};

class Pass {
 public:
  virtual ~Pass() = default;
  virtual void run(Module& m, const PassOptions& opts) = 0;
};

struct PassInfo {
  std::string name;
  std::string summary;
  std::function<std::unique_ptr<Pass>()> create;
};

// Every pass, sorted by name (the list is in passes/registry.cpp).
const std::vector<PassInfo>& registered_passes();
const PassInfo* find_pass(const std::string& name);

struct PassInstrumentation {
  bool print_after_all = false;
  std::set<std::string> print_after;
  std::set<std::string> print_before;
  bool time_passes = false;
  std::ostream* dump = nullptr;  // where IR dumps and timings go (stderr when null)
};

class PassManager {
 public:
  explicit PassManager(PassOptions opts = {}, PassInstrumentation instr = {});
  // Adds passes by name; throws nibble::Error naming an unknown pass.
  void add(const std::string& name);
  void add_pipeline(const std::vector<std::string>& names);
  // Runs every pass, verifying after each; a verifier failure names the pass that broke the IR.
  void run(Module& m);

 private:
  PassOptions opts_;
  PassInstrumentation instr_;
  std::vector<const PassInfo*> passes_;
};

// "a,b,c" -> {"a", "b", "c"}
std::vector<std::string> split_pipeline(const std::string& spec);

}  // namespace nibble
