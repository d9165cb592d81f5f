// cse: merges ops that compute the same thing (same op, operands, attributes and type).
#include <map>
#include <tuple>

#include "ir/op_registry.h"
#include "passes/pass.h"

namespace nibble {

namespace {

class CommonSubexpressionElimination : public Pass {
 public:
  void run(Module& m, const PassOptions&) override {
    for (auto& f : m.functions) {
      // Key: op def, operands, printed attrs and type. Ops are visited in order, so a replacement
      // is always defined before the ops that use it.
      std::map<std::tuple<const OpDef*, std::vector<Value*>, std::string>, Op*> seen;
      for (auto it = f->ops.begin(); it != f->ops.end();) {
        Op* op = it->get();
        if (op->has_side_effects()) {
          ++it;
          continue;
        }
        std::string attrs_and_type = op->type.str();
        for (const auto& [k, v] : op->attrs.entries()) attrs_and_type += "," + k + "=" + attribute_str(v);
        auto key = std::make_tuple(&op->op_def(), op->operands, attrs_and_type);
        auto [pos, inserted] = seen.emplace(key, op);
        if (inserted) {
          ++it;
          continue;
        }
        f->replace_all_uses(op, pos->second);
        it = f->ops.erase(it);
      }
    }
  }
};

}  // namespace

extern const PassInfo kCsePass = {"cse", "common-subexpression elimination: merges identical pure ops",
                                  [] { return std::make_unique<CommonSubexpressionElimination>(); }};

}  // namespace nibble
