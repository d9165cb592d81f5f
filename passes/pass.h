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

namespace nibble {

// What passes may consult: the target and its options (layouts and tiles differ per target).
struct PassOptions {
  std::string target = "ref";  // ref, cpu, vulkan
  int threads = 0;             // 0: the host's core count
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
