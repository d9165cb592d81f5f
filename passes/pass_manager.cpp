#include <algorithm>
#include <chrono>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include "ir/printer.h"
#include "ir/verifier.h"
#include "passes/pass.h"
#include "support/error.h"

namespace nibble {

const PassInfo* find_pass(const std::string& name) {
  for (const PassInfo& p : registered_passes())
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<std::string> split_pipeline(const std::string& spec) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string::npos) comma = spec.size();
    std::string name = spec.substr(start, comma - start);
    name.erase(0, name.find_first_not_of(" \t"));
    name.erase(name.find_last_not_of(" \t") + 1);
    if (!name.empty()) out.push_back(name);
    start = comma + 1;
  }
  return out;
}

PassManager::PassManager(PassOptions opts, PassInstrumentation instr) : opts_(std::move(opts)), instr_(std::move(instr)) {}

void PassManager::add(const std::string& name) {
  const PassInfo* p = find_pass(name);
  if (!p) {
    std::string known;
    for (const PassInfo& i : registered_passes()) known += (known.empty() ? "" : ", ") + i.name;
    fail("unknown pass '{}' (known: {})", name, known);
  }
  passes_.push_back(p);
}

void PassManager::add_pipeline(const std::vector<std::string>& names) {
  for (const std::string& n : names) add(n);
}

void PassManager::run(Module& m) {
  std::ostream& out = instr_.dump ? *instr_.dump : std::cerr;
  std::vector<std::pair<std::string, double>> times;
  for (const PassInfo* p : passes_) {
    if (instr_.print_before.count(p->name))
      fmt::print(out, "// -----// IR Dump Before {} ({}) //----- //\n{}", p->name, p->summary, print_module(m));
    auto t0 = std::chrono::steady_clock::now();
    p->create()->run(m, opts_);
    auto t1 = std::chrono::steady_clock::now();
    times.emplace_back(p->name, std::chrono::duration<double, std::milli>(t1 - t0).count());
    verify_or_throw(m, "after pass '" + p->name + "'");
    if (instr_.print_after_all || instr_.print_after.count(p->name))
      fmt::print(out, "// -----// IR Dump After {} ({}) //----- //\n{}", p->name, p->summary, print_module(m));
  }
  if (instr_.time_passes) {
    double total = 0;
    for (auto& [n, ms] : times) total += ms;
    fmt::print(out, "// ===== Pass execution timing report =====\n");
    fmt::print(out, "//   {:>10}  {:>6}  {}\n", "wall (ms)", "share", "pass");
    for (auto& [n, ms] : times)
      fmt::print(out, "//   {:>10.3f}  {:>5.1f}%  {}\n", ms, total > 0 ? 100 * ms / total : 0.0, n);
    fmt::print(out, "//   {:>10.3f}  {:>5.1f}%  total\n", total, 100.0);
  }
}

}  // namespace nibble
