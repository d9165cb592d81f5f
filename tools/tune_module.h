// The module `nibble tune` measures a kernel signature on: tokens -> an f32 embedding (a random
// table of up to 64 rows) -> matmul(x, dequant(w)) {transpose_b}, as the frontend writes a weight
// product, with random weights of the signature's format and shape (quantized by the reference
// quantizers). Each build() is a fresh copy over the same bytes: pipelines transform modules in place.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "ir/dtype.h"
#include "ir/ir.h"

namespace nibble::tools {

class TuneModule {
 public:
  // Calls of up to max_tokens tokens (the module's n_ctx is one more).
  TuneModule(DType weight, int64_t N, int64_t K, int max_tokens);
  std::unique_ptr<Module> build() const;
  // The first n tokens (valid ids) and their positions 0..n-1; n <= max_tokens.
  std::span<const int32_t> tokens(size_t n) const { return std::span(tokens_).first(n); }
  std::span<const int32_t> positions(size_t n) const { return std::span(pos_).first(n); }

 private:
  DType weight_type_;
  int64_t N_, K_, V_;
  int max_tokens_;
  std::shared_ptr<std::vector<uint8_t>> table_, weight_;
  std::vector<int32_t> tokens_, pos_;
};

}  // namespace nibble::tools
