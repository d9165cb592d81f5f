// nibble ir: read IR text (or a GGUF model), verify, run passes, print.
#include <algorithm>
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "codegen/cpu/cpu_jit.h"
#include "ir/op_registry.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "passes/pass.h"
#include "passes/pipeline.h"
#include "support/error.h"
#include "tools/commands.h"
#include "tools/executor.h"
#include "tools/load_module.h"
#include "tools/tuning_db.h"

namespace nibble::tools {

namespace {

struct IrOptions {
  std::string input;
  std::string output;
  std::string passes;
  std::string target;
  bool list_passes = false;
  bool list_ops = false;
  bool print_after_all = false;
  std::vector<std::string> print_after, print_before;
  bool time_passes = false;
  bool host = false;
  std::string cpu;
  int threads = 1;
  std::string tuning_db, tuning_device;
};

void run_ir(const IrOptions& o) {
  if (o.list_passes) {
    for (const PassInfo& p : registered_passes()) fmt::print("{:<24} {}\n", p.name, p.summary);
    return;
  }
  if (o.list_ops) {
    for (const OpDef* d : all_ops()) fmt::print("{:<14} {}\n", d->name, d->summary);
    return;
  }
  if (o.input.empty()) fail("ir: no input file (give FILE.nir or MODEL.gguf)");
  std::unique_ptr<Module> m = load_module(o.input, LoadOptions{});
  verify_or_throw(*m, o.input);

  PassInstrumentation instr;
  instr.print_after_all = o.print_after_all;
  instr.print_after.insert(o.print_after.begin(), o.print_after.end());
  instr.print_before.insert(o.print_before.begin(), o.print_before.end());
  instr.time_passes = o.time_passes;
  PassOptions popts;
  if (o.host) {
    popts = host_pass_options(o.target.empty() ? "cpu" : o.target, o.threads, popts.max_tokens);
  } else {
    popts.threads = o.threads;
  }
  if (!o.target.empty()) popts.target = o.target;
  if (!o.cpu.empty()) {
    if (o.host) fail("ir: --cpu and --host both name the CPU to schedule for; give one");
    const cpu::HostCpu c = cpu::named_cpu(o.cpu);
    popts.cpu_features = c.feature_set();
    popts.vector_bits = c.vector_bits();
  }
  if (!o.tuning_db.empty()) {
    // Schedules measured by `nibble tune`: this machine's device, or the one --tuning-device names.
    TuningDb db = TuningDb::load(o.tuning_db);
    const std::string dev = !o.tuning_device.empty() ? o.tuning_device
                                                     : device_fingerprint(popts.target == "ref" ? "cpu" : popts.target).key;
    popts.tuning = db.table_for(dev);
  }
  PassManager pm(popts, instr);
  std::vector<std::string> pipeline =
      o.passes.empty() && !o.target.empty() ? default_pipeline(o.target) : split_pipeline(o.passes);
  // A known pass the pipeline does not run would print nothing: say so instead.
  auto check_printed = [&](const char* flag, const std::set<std::string>& names) {
    for (const std::string& n : names) {
      if (!find_pass(n)) fail("{}: unknown pass '{}' (see nibble ir --list-passes)", flag, n);
      if (std::find(pipeline.begin(), pipeline.end(), n) == pipeline.end())
        fail("{}: pass '{}' is not in the pipeline ({})", flag, n,
             pipeline.empty() ? std::string("empty: give --passes or --target") : fmt::format("{}", fmt::join(pipeline, ",")));
    }
  };
  check_printed("--print-after", instr.print_after);
  check_printed("--print-before", instr.print_before);
  pm.add_pipeline(pipeline);
  pm.run(*m);

  std::string text = print_module(*m);
  if (o.output.empty() || o.output == "-") {
    fmt::print("{}", text);
  } else {
    std::ofstream out(o.output, std::ios::binary);
    if (!out || !(out << text)) fail("{}: cannot write", o.output);
  }
}

}  // namespace

void add_ir_command(CLI::App& app) {
  auto o = std::make_shared<IrOptions>();
  CLI::App* c = app.add_subcommand("ir", "Read IR text or a GGUF model, verify, run passes, print the IR");
  c->add_option("input", o->input, "FILE.nir or MODEL.gguf");
  c->add_option("-o,--output", o->output, "write the IR here instead of stdout");
  c->add_option("--passes", o->passes, "comma-separated pipeline, e.g. canonicalize,cse,dce");
  c->add_option("--target", o->target, "run the default pipeline of a target (ref, cpu, vulkan)");
  c->add_flag("--list-passes", o->list_passes, "list every pass with its summary");
  c->add_flag("--list-ops", o->list_ops, "list every op with its summary");
  c->add_flag("--print-after-all", o->print_after_all, "print the IR (to stderr) after every pass");
  c->add_option("--print-after", o->print_after, "print the IR after this pass")->delimiter(',');
  c->add_option("--print-before", o->print_before, "print the IR before this pass")->delimiter(',');
  c->add_flag("--time-passes", o->time_passes, "report the time of each pass (to stderr)");
  c->add_option("--threads", o->threads, "threads the schedule is chosen for (with --host, 0: all)")->capture_default_str();
  c->add_flag("--host", o->host,
              "schedule for this machine (CPU features, vector width, threads) as generate does; without it the "
              "passes assume a portable AVX2-class CPU, so dumps are reproducible");
  c->add_option("--cpu", o->cpu,
                 "schedule for this CPU (an LLVM cpu name: sapphirerapids, znver4, x86-64-v3, ...): its features and "
                 "vector width, as generate on it would");
  c->add_option("--tuning-db", o->tuning_db, "schedules measured by nibble tune (select-tiles prefers them)");
  c->add_option("--tuning-device", o->tuning_device, "with --tuning-db: the device fingerprint to take (default: this machine's)");
  c->callback([o] { run_ir(*o); });
}

}  // namespace nibble::tools
