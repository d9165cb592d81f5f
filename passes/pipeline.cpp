#include "passes/pipeline.h"

#include "support/error.h"

namespace nibble {

std::vector<std::string> default_pipeline(const std::string& target) {
  if (target == "ref") {
    // The reference executor interprets the graph as written, after a cleanup.
    return {
        "canonicalize",  // infer shapes, fold trivial reshapes
        "cse",           // merge duplicate weight reads and shape ops
        "dce",           // drop what nothing uses
    };
  }
  if (target == "cpu" || target == "vulkan") {
    // Compiled targets: the same script; layouts and tiles differ per target inside the passes.
    return {
        "canonicalize",         // infer shapes, fold trivial reshapes
        "cse",                  // merge duplicate weight reads and shape ops
        "fuse-dequant-matmul",  // matmul(a, dequant(w)) -> qmatmul(quantize(a), w): weights stay packed
        "fuse-elementwise",     // norm scales, biases and residual adds into their producers
        "cse",                  // one quantize per activation feeding several qmatmuls (q, k, v; gate, up)
        "dce",                  // drop the dequants and weight reads the fusions left unused
        "select-layout",        // packed layout per qmatmul weight (rows, rows_x4)
        "select-tiles",         // schedule per qmatmul (rows per task, unroll, gemv/gemm)
        "plan-buffers",         // arena offsets for every activation, last: the op list is final
    };
  }
  fail("unknown target '{}' (expected ref, cpu or vulkan)", target);
}

}  // namespace nibble
