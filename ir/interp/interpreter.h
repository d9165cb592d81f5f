// The reference executor: a plain, obviously-correct f32 interpreter of the graph IR. It is the
// oracle every backend is tested against, so clarity beats speed. Weights are decoded row by row
// as they are used; the KV cache (state) lives here and persists across calls.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/ir.h"

namespace nibble {

// A runtime tensor: f32 or i32 data owned here, or a packed view (weights, states, dequant).
struct RefTensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<float> f;                // f32 values
  std::vector<int32_t> i;              // i32 values
  const uint8_t* packed = nullptr;     // raw rows of `dtype` (weights, states)
  DType packed_dtype = DType::F32;
  uint8_t* state = nullptr;            // writable state buffer (kv caches)
  std::vector<uint8_t> owned;          // packed bytes owned here (quantized activations)

  int64_t numel() const;
  int64_t rows() const { return shape.empty() ? 1 : numel() / shape.back(); }
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  bool is_packed() const { return packed != nullptr; }
  // Decodes row r of a packed or f32 tensor (viewed as [rows, cols]) into dst.
  void row(int64_t r, float* dst) const;
  // The whole tensor as f32 (decoding a packed one).
  std::vector<float> to_f32() const;
};

class Interpreter {
 public:
  explicit Interpreter(const Module& m, const std::string& function = "forward");
  ~Interpreter();

  // Runs the function with %tokens and %pos (i32[n_tokens]); returns its first result, f32
  // row-major (for a model: logits [n_tokens x n_vocab]).
  std::vector<float> forward(const std::vector<int32_t>& tokens, const std::vector<int32_t>& pos);
  // Runs with arbitrary arguments (shapes must match the signature); returns every result.
  std::vector<RefTensor> run(std::vector<RefTensor> args);
  void reset_state();  // zeroes the KV cache

 private:
  const Module& m_;
  const Function* f_;
  std::unordered_map<std::string, std::vector<uint8_t>> states_;
};

}  // namespace nibble
