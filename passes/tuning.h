// Measured schedules that override select-tiles' heuristic: what `nibble tune` found for one device,
// keyed by kernel signature (see tuning_signature). Filled by the driver from a tuning database
// (tools/tuning_db.h); docs/tuning.md.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "ir/ir.h"

namespace nibble {

struct TunedSchedule {
  int64_t rows_per_task = 16;
  int64_t k_unroll = 1;
  int64_t m_tile = 4;
  bool operator==(const TunedSchedule&) const = default;
};

struct TuningTable {
  std::string device;                                // the fingerprint the entries were measured on
  std::map<std::string, TunedSchedule> by_signature;
};

// What a qmatmul's schedule depends on, besides the device (the fingerprint keys that):
//   weight format, activation type, N, K, the weight's layout, the path and the thread count
//   (rows_per_task trades tasks per thread against L2 footprint).
// Path: "gemv+gemm" when M depends on n_tokens (one schedule for decode, whose gemv kernel uses
// rows_per_task and k_unroll, and for prefill, whose gemm variant also uses m_tile); a static M
// gives "gemv M=<M>" or "gemm M=<M>". Epilogues (bias, residual) are not part of it.
// E.g. "qmatmul q4_0 act=q8_0 N=288 K=768 layout=rows_x4 path=gemv+gemm threads=2".
// Call after select-layout (the layout is read from the weight's declaration).
std::string tuning_signature(const Module& m, const Op& qmatmul, int threads);

// A tuned schedule select-tiles may use for an N-row weight: rows_per_task a positive multiple of 16
// (see select_tiles.cpp: results then do not depend on the thread count), k_unroll in [1, 8], m_tile
// in [1, 16] (codegen's limits). Returns "" when valid, else why not.
std::string validate_tuned(const TunedSchedule& s);

}  // namespace nibble
