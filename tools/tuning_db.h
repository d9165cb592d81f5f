// The tuning database `nibble tune` writes and compile/generate read: a readable JSON file of
// measured kernel schedules, keyed by device fingerprint, then kernel signature (passes/tuning.h).
//
//   {"format": "nibble-tuning", "version": 1,
//    "devices": {"<fingerprint>": {"target": "cpu", "about": {...},
//                                  "kernels": {"<signature>": {"best": {<schedule>},
//                                                              "best_us": .., "default": {..}, "default_us": ..,
//                                                              "speedup": .., "measured": "<UTC time>", ...}}}}}
//
// A schedule is the device's target's: cpu {rows_per_task, k_unroll, m_tile}; vulkan {gemv_wg,
// gemv_rows, batch: "gemv", batch_tokens} or {gemv_wg, gemv_rows, batch: "gemm", gemm: [bm, bn, bk,
// tm, tn]}. Times are a workload's (see tools/tune_search.h); "best" is what select-tiles uses.
// docs/tuning.md.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "passes/tuning.h"

namespace nibble::tools {

struct TuningEntry {
  KernelSchedule best, heuristic;                // of the device's target
  double best_us = 0, default_us = 0;          // the workload's median time with each
  double best_decode_us = 0, best_prefill_us = 0, default_decode_us = 0, default_prefill_us = 0;
  int prefill_tokens = 0;
  int candidates = 0;                            // timed (and checked against the reference)
  int rejected = 0;                              // failed the reference check
  std::string measured;                          // UTC, ISO 8601
  double speedup() const { return best_us > 0 ? default_us / best_us : 1.0; }
};

struct TuningDevice {
  std::string target = "cpu";  // cpu, vulkan: the kind of its schedules
  std::string about_json;   // what identifies the device, as a JSON object (name, features, driver, ...)
  std::map<std::string, TuningEntry> kernels;  // by signature
};

struct TuningDb {
  std::map<std::string, TuningDevice> devices;  // by fingerprint

  // A missing file is an empty database; a malformed one fails naming the file (and where).
  static TuningDb load(const std::string& path);
  // Writes atomically (a temporary file renamed over), creating the directory.
  void save(const std::string& path) const;
  const TuningEntry* find(const std::string& device, const std::string& signature) const;
  // The signatures (in order, without repeats) the device has no entry for: what a re-run tunes.
  std::vector<std::string> missing(const std::string& device, const std::vector<std::string>& signatures) const;
  // The entries of one device as select-tiles takes them (null when the device has none).
  std::shared_ptr<const TuningTable> table_for(const std::string& device) const;
};

struct DeviceFingerprint {
  std::string key;         // e.g. "cpu AMD EPYC 7B13 [avx2,f16c,fma]"
  std::string target;      // cpu, vulkan
  std::string about_json;  // the details (the CPU's full LLVM feature string; the Vulkan driver, ids)
};
// This machine's device for target: cpu, vulkan or vulkan:N.
DeviceFingerprint device_fingerprint(const std::string& target);

// $XDG_CACHE_HOME/nibble/tuning.json, else ~/.cache/nibble/tuning.json.
std::string default_tuning_db_path();

// The entries of db_path for THIS machine's device of target (cpu, vulkan, vulkan:N); null when the
// file or the device has none. Fails (nibble::Error naming the file) on a malformed database.
std::shared_ptr<const TuningTable> load_tuning_table(const std::string& db_path, const std::string& target);

}  // namespace nibble::tools
