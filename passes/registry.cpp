// The list of passes. Each pass file defines one PassInfo; add new passes here.
#include <algorithm>

#include "passes/pass.h"

namespace nibble {

extern const PassInfo kCanonicalizePass;
extern const PassInfo kCsePass;
extern const PassInfo kDcePass;
extern const PassInfo kFuseDequantMatmulPass;
extern const PassInfo kFuseElementwisePass;
extern const PassInfo kPlanBuffersPass;
extern const PassInfo kSelectLayoutPass;
extern const PassInfo kSelectTilesPass;

const std::vector<PassInfo>& registered_passes() {
  static const std::vector<PassInfo> passes = [] {
    std::vector<PassInfo> p = {
        kCanonicalizePass,      kCsePass,          kDcePass,          kFuseDequantMatmulPass,
        kFuseElementwisePass,   kPlanBuffersPass,  kSelectLayoutPass, kSelectTilesPass,
    };
    std::sort(p.begin(), p.end(), [](const PassInfo& a, const PassInfo& b) { return a.name < b.name; });
    return p;
  }();
  return passes;
}

}  // namespace nibble
