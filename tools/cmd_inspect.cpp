// nibble inspect: what a plan holds: target, kernels with their schedules and share of the weights,
// memory; --json for scripts, --dot for the kernel graph (Graphviz).
#include <algorithm>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "ir/ir.h"
#include "ir/parser.h"
#include "runtime/plan/plan_file.h"
#include "support/error.h"
#include "tools/commands.h"
#include "tools/plan.h"

namespace nibble::tools {

namespace {

using nlohmann::json;

struct InspectOptions {
  std::string plan, dot;
  bool json_out = false, verify_weights = false;
};

std::string mib(uint64_t b) { return fmt::format("{:.2f} MiB", double(b) / (1 << 20)); }

std::string schedule_str(const json& s) {
  if (s.contains("gemv"))  // vulkan: the device's tiles
    return fmt::format("{}; batches of >= {}: {}", s.value("gemv", std::string()), s.value("gemm_from", 0),
                       s.value("batch", std::string()));
  std::string r = fmt::format("rows {} unroll {} v{} {}", s.value("rows_per_task", 0), s.value("k_unroll", 0),
                              s.value("vector_bits", 0), s.value("path", std::string()));
  if (s.value("gemm_from", 0) > 0) r += fmt::format(" (gemm m{} from {} tokens)", s.value("m_tile", 0), s.value("gemm_from", 0));
  else if (s.value("path", std::string()) == "gemm") r += fmt::format(" m{}", s.value("m_tile", 0));
  return r;
}

// "blk.12.ffn_up.weight" -> "blk.*.ffn_up.weight": one row for the same kernel in every layer.
std::string layer_pattern(const std::string& w) {
  if (!w.starts_with("blk.")) return w;
  const size_t dot = w.find('.', 4);
  return dot == std::string::npos ? w : "blk.*" + w.substr(dot);
}

struct KernelRow {
  std::string op, weights, layout, schedule, source;
  int count = 0;
  double share = 0;
};

// Weight products grouped by (op, weight name pattern, layout, schedule, source), in first-seen order.
std::vector<KernelRow> kernel_rows(const json& kernels) {
  std::vector<KernelRow> rows;
  for (const json& k : kernels) {
    KernelRow r{k.value("op", std::string()), layer_pattern(k.value("weight", std::string())),
                k.value("layout", std::string()), schedule_str(k.value("schedule", json::object())),
                k.value("source", std::string())};
    auto it = std::find_if(rows.begin(), rows.end(), [&](const KernelRow& x) {
      return x.op == r.op && x.weights == r.weights && x.layout == r.layout && x.schedule == r.schedule &&
             x.source == r.source;
    });
    if (it == rows.end()) it = rows.insert(rows.end(), r);
    it->count++;
    it->share += k.value("weight_share", 0.0);
  }
  return rows;
}

void print_summary(const InspectOptions& o, const PlanContents& c) {
  const json& m = c.meta;
  const json model = m.value("model", json::object());
  fmt::print("{}: nibble plan (format {}), {}, compiled {} from {}\n", o.plan, rt::kPlanFormatVersion, mib(c.file_bytes),
             m.value("created", std::string("?")), m.value("source", std::string("?")));
  const std::string target = m.value("target", std::string("?"));
  if (target == "cpu") {
    const json cpu = m.value("cpu", json::object());
    std::vector<std::string> feats = c.plan.at("requires").value("features", std::vector<std::string>{});
    fmt::print("target:  cpu {} ({}), {}-bit vectors, {} threads by default\n", cpu.value("name", std::string()),
               cpu.value("triple", std::string()), cpu.value("vector_bits", 0), m.value("threads", 0));
    std::string notable;
    for (const std::string& f : feats)
      if (f.starts_with("avx") || f == "fma" || f == "f16c") notable += " " + f;
    fmt::print("         needs{} ({} CPU features in all)\n", notable, feats.size());
  } else {
    const json v = m.value("vulkan", json::object());
    fmt::print("target:  vulkan '{}' ({}, driver {} {:#x}), variant {}\n", v.value("device", std::string()),
               v.value("type", std::string()), v.value("driver", std::string()), v.value("driver_version", 0u),
               v.value("variant", std::string()));
  }
  fmt::print("model:   {} '{}': n_embd {}, {} layers, {} heads ({} kv), vocab {}, context {}, {} tokens per call\n",
             model.value("arch", std::string()), model.value("name", std::string()), model.value("n_embd", 0),
             model.value("n_layer", 0), model.value("n_head", 0), model.value("n_head_kv", 0), model.value("n_vocab", 0),
             model.value("n_ctx", 0), model.value("max_tokens", 0));
  const json mem = m.value("memory", json::object());
  fmt::print("memory:  weights {}, activation arena {}, KV cache {}\n", mib(mem.value("weights", uint64_t(0))),
             mib(mem.value("arena", uint64_t(0))), mib(mem.value("kv_cache", uint64_t(0))));
  std::string secs;
  for (const auto& [name, bytes] : c.sections) secs += fmt::format("{}{} {}", secs.empty() ? "" : ", ", name, mib(bytes));
  fmt::print("sections: {}\n", secs);
  const json tdb = m.value("tuning_db", json(nullptr));
  fmt::print("tuning:  {}\n", tdb.is_string() ? "database " + tdb.get<std::string>() : std::string("none (heuristic schedules)"));

  const json kernels = m.value("kernels", json::array());
  std::vector<KernelRow> rows = kernel_rows(kernels);
  size_t w_op = 2, w_weight = 6, w_layout = 6, w_sched = 8;
  for (const KernelRow& r : rows) {
    w_op = std::max(w_op, r.op.size());
    w_weight = std::max(w_weight, r.weights.size());
    w_layout = std::max(w_layout, r.layout.size());
    w_sched = std::max(w_sched, r.schedule.size());
  }
  fmt::print("\nweight products ({} in {} kinds):\n", kernels.size(), rows.size());
  fmt::print("  {:<{}}  {:>5}  {:<{}}  {:<{}}  {:<{}}  {:<9}  {:>6}\n", "op", w_op, "count", "weights", w_weight, "layout",
             w_layout, "schedule", w_sched, "source", "share");
  for (const KernelRow& r : rows)
    fmt::print("  {:<{}}  {:>5}  {:<{}}  {:<{}}  {:<{}}  {:<9}  {:>5.1f}%\n", r.op, w_op, r.count, r.weights, w_weight,
               r.layout, w_layout, r.schedule, w_sched, r.source, 100.0 * r.share);
  std::map<std::string, int> kinds;
  int n_steps = 0;
  for (const json& s : m.value("steps", json::array())) {
    const std::string label = s.value("label", std::string());
    kinds[label.substr(0, label.find(' '))]++;
    ++n_steps;
  }
  std::string ks;
  for (const auto& [k, n] : kinds) ks += fmt::format("{}{} x{}", ks.empty() ? "" : ", ", k, n);
  fmt::print("\nsteps ({} per call): {}\n", n_steps, ks);
}

// The dataflow graph of the final IR: one node per op that computes, weights named on their users.
void write_dot(const std::string& ir_text, const std::string& plan_path, const std::string& out) {
  auto m = parse_module(ir_text, plan_path + " (ir section)");
  std::string s = "digraph plan {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n";
  std::map<const Value*, std::string> id;
  int n = 0;
  for (const auto& f : m->functions) {
    for (const auto& a : f->args) {
      id[a.get()] = fmt::format("n{}", n++);
      s += fmt::format("  {} [label=\"%{}\\n{}\", shape=ellipse];\n", id[a.get()], a->name, a->type.str());
    }
    for (const auto& op : f->ops) {
      if (op->op_name() == "weight" || op->op_name() == "state") continue;
      id[op.get()] = fmt::format("n{}", n++);
      std::string label = op->op_name();
      for (const Value* v : op->operands)
        if (v->def && v->def->op_name() == "weight") {
          const WeightDecl* w = m->find_weight(*v->def->attrs.get_symbol("ref"));
          if (w) label += fmt::format("\\n@{} {}", w->name, w->type.str());
        }
      label += "\\n" + op->type.str();
      const bool heavy = op->op_name() == "qmatmul";
      s += fmt::format("  {} [label=\"{}\"{}];\n", id[op.get()], label, heavy ? ", style=filled, fillcolor=\"#ffe0a0\"" : "");
      for (const Value* v : op->operands)
        if (auto it = id.find(v); it != id.end()) s += fmt::format("  {} -> {};\n", it->second, id[op.get()]);
    }
  }
  s += "}\n";
  std::ofstream f(out, std::ios::binary);
  if (!f || !(f << s)) fail("{}: cannot write", out);
}

void run_inspect(const InspectOptions& o) {
  PlanContents c = read_plan_contents(o.plan, o.verify_weights);
  if (!o.dot.empty()) {
    auto pf = rt::PlanFile::open(o.plan);
    write_dot(pf->section_text("ir"), o.plan, o.dot);
  }
  if (o.json_out) {
    json j = c.meta;
    json secs = json::array();
    for (const auto& [name, bytes] : c.sections) secs.push_back({{"name", name}, {"bytes", bytes}});
    j["sections"] = secs;
    j["file_bytes"] = c.file_bytes;
    j["format_version"] = rt::kPlanFormatVersion;
    j["requires"] = c.plan.value("requires", json::object());
    fmt::print("{}\n", j.dump(2));
    return;
  }
  print_summary(o, c);
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* c = app.add_subcommand("inspect", "Summarize a compiled plan: target, kernels and schedules, memory");
  c->add_option("plan", o->plan, "PLAN.nplan")->required();
  c->add_flag("--json", o->json_out, "print the plan's metadata as JSON");
  c->add_option("--dot", o->dot, "write the kernel graph here (Graphviz dot)");
  c->add_flag("--verify-weights", o->verify_weights, "also verify the weights' checksum");
  c->callback([o] { run_inspect(*o); });
}

}  // namespace nibble::tools
