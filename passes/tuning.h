// Measured schedules that override select-tiles' heuristic: what `nibble tune` found for one device,
// keyed by kernel signature (see tuning_signature). Filled by the driver from a tuning database.
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
};

struct TuningTable {
  std::string device;                                // the fingerprint the entries were measured on
  std::map<std::string, TunedSchedule> by_signature;
};

}  // namespace nibble
