// dce: removes ops whose results are never used and that have no side effects.
#include <unordered_set>

#include "passes/pass.h"

namespace nibble {

namespace {

class DeadCodeElimination : public Pass {
 public:
  void run(Module& m, const PassOptions&) override {
    for (auto& f : m.functions) {
      // Walk backwards so an op's operands are marked live before they are visited.
      std::unordered_set<const Value*> live(f->results.begin(), f->results.end());
      for (auto it = f->ops.end(); it != f->ops.begin();) {
        --it;
        Op* op = it->get();
        if (!op->has_side_effects() && !live.count(op)) {
          it = f->ops.erase(it);
          continue;
        }
        live.insert(op->operands.begin(), op->operands.end());
      }
    }
  }
};

}  // namespace

extern const PassInfo kDcePass = {"dce", "dead-code elimination: removes unused ops without side effects",
                                  [] { return std::make_unique<DeadCodeElimination>(); }};

}  // namespace nibble
