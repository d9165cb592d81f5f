// The measurement behind `nibble tune`, the same for every target (tools/tune_target.h says what
// differs): each kernel signature is tuned on a one-kernel module of its shape (an f32 embedding
// feeding the weight product, random weights quantized by the reference quantizers), compiled and
// run through make_executor exactly as a model is, in two stages:
//   1. decode: the target's decode candidates and the heuristic, timed on 1-token calls;
//   2. prefill: the best of 1 with each prefill variant, beside the heuristic, timed on
//      prefill_tokens-token calls.
// Each candidate is first checked against the reference executor (ir/interp), per call on the
// compiled module where the candidate's kernel computes on the activations it quantizes, else on
// the module as built (TuneTarget::quantized_activations): NMSE <= 1e-6 (1e-8 for float weights) on
// a decode call and a 9-token call (the batch path and a tail), else it is rejected. Timing: a warm-up, then rounds in which every candidate in turn runs a batch
// of calls (a rotating order, a 1 ms pause first so the previous executor's workers have gone to
// sleep); the median batch per candidate. The workload time of a schedule is prefill(P) + P x
// decode: a P-token prompt, then P tokens generated. The best wins only when at least 2% faster
// than the heuristic; else the entry records the heuristic (speed-up 1.00), so a database never
// makes a kernel slower than the default.
#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "tools/tune_target.h"
#include "tools/tuning_db.h"

namespace nibble::tools {

using TuneClock = std::chrono::steady_clock;
double seconds_since(TuneClock::time_point t);
double median_of(std::vector<double> v);  // INFINITY when empty

// Progress on stderr: a redrawn bar on a terminal, else only the lines.
class TuneProgress {
 public:
  explicit TuneProgress(bool quiet);
  void update(int index, int total, const std::string& label, int done, int cands, double left_s);
  void line(const std::string& s);

 private:
  bool quiet_, tty_;
};

struct TuneOutcome {
  bool ok = false;
  std::string why;  // when not ok
  TuningEntry entry;
};

// Tunes one kernel within share_s seconds (and before deadline). index/total are for the progress bar.
TuneOutcome tune_kernel(const TuneTarget& target, const TuneKernel& k, int prefill_tokens, double share_s,
                        TuneClock::time_point deadline, TuneProgress& progress, int index, int total);

}  // namespace nibble::tools
