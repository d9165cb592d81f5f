// Reader for the NQV1 quantization test vectors in reference/quant/<type>.bin (llama.cpp outputs;
// layout in reference/README.md section 5).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/dtype.h"

namespace nibble::test {

struct QuantVectors {
  std::string type_name;  // ggml's spelling, e.g. "q4_K"
  DType type;
  int64_t n_rows = 0, n_cols = 0;
  int block_size = 0, bytes_per_block = 0;
  std::vector<float> input;         // n_rows * n_cols
  std::vector<uint8_t> quantized;   // n_rows * row_bytes
  std::vector<float> dequantized;   // n_rows * n_cols

  int64_t row_bytes() const { return n_cols / block_size * bytes_per_block; }
};

// Parses one file; throws nibble::Error naming the file and the problem on any inconsistency
// (bad magic, unknown type, geometry disagreeing with the DType table, wrong file size).
QuantVectors read_quant_vectors(const std::string& path);

// NIBBLE_SHARED_DIR/reference/quant/<name>.bin
std::string quant_vector_path(const std::string& ggml_type_name);

}  // namespace nibble::test
