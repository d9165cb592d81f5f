#include "frontends/quantize/convert.h"

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include "support/error.h"

namespace nibble::quant {

int default_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

void convert_rows(int64_t nrows, int64_t ncols, DType dst, const RowSource& src, const ChunkSink& out, int threads,
                  size_t chunk_bytes) {
  const DTypeInfo& info = dtype_info(dst);
  if (!info.quantize_row) fail("cannot encode rows as {}", info.name);
  if (ncols <= 0 || ncols % info.block_size != 0)
    fail("cannot encode rows of {} elements as {} (block of {})", ncols, info.name, info.block_size);
  if (nrows <= 0) return;
  const int64_t rbytes = row_bytes(dst, ncols);
  const int64_t chunk_rows = std::max<int64_t>(1, int64_t(chunk_bytes / sizeof(float)) / ncols);
  const int n_threads = int(std::clamp<int64_t>(threads > 0 ? threads : default_threads(), 1, chunk_rows));

  std::vector<uint8_t> buf(size_t(std::min(chunk_rows, nrows) * rbytes));
  // Each thread encodes a contiguous share of the chunk's rows, through its own f32 row.
  auto work = [&](int64_t r0, int64_t r1, int64_t base) {
    std::vector<float> row(static_cast<size_t>(ncols));
    for (int64_t r = r0; r < r1; ++r) {
      src(r, row.data());
      info.quantize_row(row.data(), buf.data() + (r - base) * rbytes, ncols);
    }
  };
  for (int64_t c0 = 0; c0 < nrows; c0 += chunk_rows) {
    const int64_t c1 = std::min(nrows, c0 + chunk_rows), n = c1 - c0;
    const int nt = int(std::min<int64_t>(n_threads, n));
    if (nt <= 1) {
      work(c0, c1, c0);
    } else {
      std::vector<std::exception_ptr> errors(static_cast<size_t>(nt));
      std::vector<std::thread> pool;
      auto bound = [&](int k) { return c0 + n * k / nt; };
      for (int k = 1; k < nt; ++k)
        pool.emplace_back([&, k] {
          try {
            work(bound(k), bound(k + 1), c0);
          } catch (...) {
            errors[size_t(k)] = std::current_exception();
          }
        });
      try {
        work(bound(0), bound(1), c0);
      } catch (...) {
        errors[0] = std::current_exception();
      }
      for (std::thread& t : pool) t.join();
      for (const std::exception_ptr& e : errors)
        if (e) std::rethrow_exception(e);
    }
    out(buf.data(), size_t(n * rbytes));
  }
}

}  // namespace nibble::quant
