#include "passes/pipeline.h"

#include "support/error.h"

namespace nibble {

std::vector<std::string> default_pipeline(const std::string& target) {
  // Every target starts by cleaning the imported graph.
  std::vector<std::string> p = {
      "canonicalize",  // infer shapes, fold trivial reshapes
      "cse",           // merge duplicate weight reads and shape ops
      "dce",           // drop what nothing uses
  };
  if (target == "ref") return p;  // the reference executor interprets the graph as written
  fail("unknown target '{}' (expected ref, cpu or vulkan)", target);
}

}  // namespace nibble
