// Row conversion shared by quantize and synth: f32 rows made on demand are encoded to a block format
// a chunk at a time, in parallel over rows, and handed on in order, so no whole tensor is ever held.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

#include "ir/dtype.h"

namespace nibble::quant {

// Fills `out` (ncols floats) with row `row`. Called concurrently from several threads for different rows.
using RowSource = std::function<void(int64_t row, float* out)>;
using ChunkSink = std::function<void(const void* data, size_t n)>;

// Encodes rows [0, nrows) of `ncols` elements to `dst` (ncols a multiple of its block) and passes the
// bytes to `out`, in row order, in chunks of about `chunk_bytes` of f32 input. threads <= 0: all cores.
void convert_rows(int64_t nrows, int64_t ncols, DType dst, const RowSource& src, const ChunkSink& out,
                  int threads = 0, size_t chunk_bytes = size_t(16) << 20);

// Threads convert_rows uses for threads <= 0.
int default_threads();

}  // namespace nibble::quant
