// CpuJit: host detection, request bookkeeping, the O3 pipeline, object emission, ORC LLJIT and
// the on-disk object cache.
#include "codegen/cpu/cpu_jit.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <algorithm>
#include <atomic>
#include <exception>

#include <llvm/Analysis/CGSCCPassManager.h>
#include <llvm/Analysis/LoopAnalysisManager.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Support/xxhash.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/SubtargetFeature.h>
#include <llvm/TargetParser/Host.h>

#include "codegen/cpu/generator_hash.h"
#include "codegen/cpu/kernel_gen.h"
#include "support/error.h"

namespace nibble::cpu {
using namespace llvm;
using detail::KernelKind;
using detail::KernelSpec;

namespace {

void init_llvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    InitializeNativeTarget();
    InitializeNativeTargetAsmPrinter();
  });
}

std::string to_string(llvm::Error e) {
  std::string s;
  raw_string_ostream os(s);
  os << e;
  return os.str();
}

template <class T>
T check(Expected<T> v, const char* what) {
  if (!v) fail("cpu jit: {}: {}", what, to_string(v.takeError()));
  return std::move(*v);
}

void check(llvm::Error e, const char* what) {
  if (e) fail("cpu jit: {}: {}", what, to_string(std::move(e)));
}

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Our feature flags from a subtarget (named CPU) or a feature map (host).
template <class Has>
void fill_flags(HostCpu& h, Has has) {
  h.avx2 = has("avx2");
  h.fma = has("fma");
  h.f16c = has("f16c");
  h.avx512f = has("avx512f");
  h.avx512bw = has("avx512bw");
  h.avx512vl = has("avx512vl");
  h.avx512vnni = has("avx512vnni");
  h.avxvnni = has("avxvnni");
}

std::unique_ptr<TargetMachine> make_target_machine(const HostCpu& cpu) {
  init_llvm();
  std::string err;
  const Target* target = TargetRegistry::lookupTarget(cpu.triple, err);
  if (!target) fail("cpu jit: no LLVM target for {}: {}", cpu.triple, err);
  TargetOptions opts;
  std::unique_ptr<TargetMachine> tm(target->createTargetMachine(cpu.triple, cpu.name, cpu.features_string, opts,
                                                                Reloc::PIC_, CodeModel::Small,
                                                                CodeGenOptLevel::Aggressive));
  if (!tm) fail("cpu jit: cannot create a target machine for cpu '{}'", cpu.name);
  return tm;
}

}  // namespace

HostCpu named_cpu(const std::string& name) {
  init_llvm();
  HostCpu h;
  h.name = name;
  h.triple = sys::getProcessTriple();
  std::string err;
  const Target* target = TargetRegistry::lookupTarget(h.triple, err);
  if (!target) fail("cpu jit: no LLVM target for {}: {}", h.triple, err);
  std::unique_ptr<MCSubtargetInfo> generic(target->createMCSubtargetInfo(h.triple, "", ""));
  if (!generic || !generic->isCPUStringValid(name)) fail("cpu jit: unknown cpu '{}' for {}", name, h.triple);
  std::unique_ptr<MCSubtargetInfo> sti(target->createMCSubtargetInfo(h.triple, name, ""));
  fill_flags(h, [&](const char* f) { return sti->checkFeatures(std::string("+") + f); });
  return h;
}

HostCpu detect_host() {
  init_llvm();
  HostCpu h;
  h.name = sys::getHostCPUName().str();
  h.triple = sys::getProcessTriple();
  auto features = sys::getHostCPUFeatures();
  std::map<std::string, bool> sorted;
  for (auto& kv : features) sorted[kv.getKey().str()] = kv.getValue();
  std::string fs;
  for (auto& [name, on] : sorted) {
    if (!fs.empty()) fs += ",";
    fs += (on ? "+" : "-") + name;
  }
  h.features_string = fs;
  fill_flags(h, [&](const char* f) {
    auto it = sorted.find(f);
    return it != sorted.end() && it->second;
  });
  return h;
}

struct CpuJit::Impl {
  Options opts;
  int compile_threads = 0;
  HostCpu target;
  std::unique_ptr<orc::LLJIT> jit;
  std::map<std::string, KernelSpec> pending;
  std::map<std::string, KernelSpec> compiled;
  std::map<std::string, NibbleKernelFn> fns;
  std::vector<std::vector<uint8_t>> objects;  // every module's object code, as linked
  JitStats stats;

  std::string request(KernelSpec s) {
    if (!compiled.count(s.symbol) && !pending.count(s.symbol)) {
      detail::check_spec(s);
      pending.emplace(s.symbol, s);
    }
    return s.symbol;
  }

  // IR of the given specs in a fresh module.
  std::unique_ptr<Module> emit(LLVMContext& ctx, const std::vector<KernelSpec>& specs, TargetMachine& tm) {
    auto m = std::make_unique<Module>("nibble_kernels", ctx);
    m->setTargetTriple(target.triple);
    m->setDataLayout(tm.createDataLayout());
    for (const KernelSpec& s : specs) detail::emit_kernel(*m, target, s);
    std::string err;
    raw_string_ostream os(err);
    if (verifyModule(*m, &os)) fail("cpu jit: generated IR does not verify: {}", os.str());
    return m;
  }

  void optimize(Module& m, TargetMachine& tm) {
    LoopAnalysisManager lam;
    FunctionAnalysisManager fam;
    CGSCCAnalysisManager cgam;
    ModuleAnalysisManager mam;
    PassBuilder pb(&tm);
    pb.registerModuleAnalyses(mam);
    pb.registerCGSCCAnalyses(cgam);
    pb.registerFunctionAnalyses(fam);
    pb.registerLoopAnalyses(lam);
    pb.crossRegisterProxies(lam, fam, cgam, mam);
    ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(OptimizationLevel::O3);
    mpm.run(m, mam);
  }

  std::string cache_key(const std::vector<KernelSpec>& specs) const {
    std::string key = fmt::format("nibble-cpu-jit gen {} {} llvm {}\n{}\n{}\n{}\n", detail::kGeneratorVersion,
                                  NIBBLE_CPU_GENERATOR_HASH, LLVM_VERSION_STRING, target.triple, target.name,
                                  target.features_string);
    for (const KernelSpec& s : specs) key += s.symbol + "\n";
    return key;
  }

  void ensure_jit() {
    if (jit) return;
    init_llvm();
    orc::JITTargetMachineBuilder jtmb{Triple(target.triple)};
    jtmb.setCPU(target.name);
    if (!target.features_string.empty()) {
      SubtargetFeatures f(target.features_string);
      jtmb.addFeatures(f.getFeatures());
    }
    jtmb.setCodeGenOptLevel(CodeGenOptLevel::Aggressive);
    jtmb.setRelocationModel(Reloc::PIC_);
    jtmb.setCodeModel(CodeModel::Small);
    jit = check(orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(jtmb)).create(), "creating LLJIT");
    // Kernels may call memset / memcpy.
    auto gen = check(orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(jit->getDataLayout().getGlobalPrefix()),
                     "process symbols");
    jit->getMainJITDylib().addGenerator(std::move(gen));
  }
};

CpuJit::CpuJit(Options o) : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(o);
  impl_->target = impl_->opts.cpu.empty() ? detect_host() : named_cpu(impl_->opts.cpu);
}

CpuJit::~CpuJit() = default;

const HostCpu& CpuJit::target() const { return impl_->target; }

std::string CpuJit::request_qmatmul(const QMatmulKernel& k) {
  KernelSpec s;
  s.kind = KernelKind::QMatmul;
  s.mm = k;
  s.symbol = k.symbol();
  return impl_->request(std::move(s));
}

std::string CpuJit::request_quantize(DType act) {
  KernelSpec s;
  s.kind = KernelKind::Quantize;
  s.type = act;
  s.symbol = std::string("quantize_") + dtype_name(act);
  return impl_->request(std::move(s));
}

std::string CpuJit::request_get_rows(DType table) {
  KernelSpec s;
  s.kind = KernelKind::GetRows;
  s.type = table;
  s.symbol = std::string("get_rows_") + dtype_name(table);
  return impl_->request(std::move(s));
}

namespace {

// One module's worth of kernels, compiled (or loaded from the cache) on its own thread.
struct Part {
  std::vector<KernelSpec> specs;
  std::string key, path_o, path_key;
  std::unique_ptr<MemoryBuffer> obj;
  bool hit = false;
  double emit_ms = 0, optimize_ms = 0, codegen_ms = 0;
  std::exception_ptr error;
};

// A cached object is used only if it parses and defines every kernel of its part (else: rebuilt).
bool defines_all(const MemoryBuffer& buf, const std::vector<KernelSpec>& specs) {
  auto obj = object::ObjectFile::createObjectFile(buf.getMemBufferRef());
  if (!obj) {
    consumeError(obj.takeError());
    return false;
  }
  std::set<std::string> names;
  for (const object::SymbolRef& sym : (*obj)->symbols()) {
    auto name = sym.getName();
    if (!name) {
      consumeError(name.takeError());
      return false;
    }
    names.insert(name->str());
  }
  for (const KernelSpec& s : specs)
    if (!names.count(s.symbol)) return false;
  return true;
}

// Kernels of one weight format share tiles: each format's kernels (and the codecs) make one module,
// and one cache entry, whatever the number of compile threads.
std::vector<Part> partition(const std::vector<KernelSpec>& specs) {
  std::map<std::string, std::vector<KernelSpec>> fam;
  for (const KernelSpec& s : specs)
    fam[s.kind == KernelKind::QMatmul ? std::string(dtype_name(s.mm.weight)) : std::string("~codecs")].push_back(s);
  std::vector<Part> parts;
  for (auto& [k, v] : fam) {
    parts.emplace_back();
    parts.back().specs = v;
  }
  // Largest first, so the threads finish together (a gemm kernel weighs more than a gemv one).
  auto cost = [](const Part& p) {
    int c = 0;
    for (const KernelSpec& s : p.specs) c += s.kind == KernelKind::QMatmul ? (s.mm.sched.gemm ? 4 : 2) : 1;
    return c;
  };
  std::stable_sort(parts.begin(), parts.end(), [&](const Part& a, const Part& b) { return cost(a) > cost(b); });
  return parts;
}

}  // namespace

void CpuJit::compile() {
  Impl& I = *impl_;
  if (I.pending.empty()) return;
  std::vector<KernelSpec> specs;
  for (auto& [sym, s] : I.pending) specs.push_back(s);
  I.ensure_jit();
  const auto wall0 = Clock::now();

  int threads = I.compile_threads;
  if (threads <= 0) threads = int(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
  std::vector<Part> parts = partition(specs);
  for (Part& part : parts) {
    part.key = I.cache_key(part.specs);
    if (I.opts.cache_dir.empty()) continue;
    const uint64_t h = xxh3_64bits(StringRef(part.key));
    part.path_o = fmt::format("{}/{:016x}.o", I.opts.cache_dir, h);
    part.path_key = fmt::format("{}/{:016x}.key", I.opts.cache_dir, h);
    std::ifstream kf(part.path_key, std::ios::binary);
    std::stringstream ks;
    ks << kf.rdbuf();
    if (kf && ks.str() == part.key) {
      auto buf = MemoryBuffer::getFile(part.path_o);
      if (buf && defines_all(**buf, part.specs)) {
        part.obj = std::move(*buf);
        part.hit = true;
      }
    }
  }

  auto build = [&](Part& part) {
    try {
      auto t0 = Clock::now();
      auto tm = make_target_machine(I.target);
      LLVMContext ctx;
      auto m = I.emit(ctx, part.specs, *tm);
      part.emit_ms = ms_since(t0);
      t0 = Clock::now();
      I.optimize(*m, *tm);
      part.optimize_ms = ms_since(t0);
      t0 = Clock::now();
      SmallVector<char, 0> out;
      {
        raw_svector_ostream os(out);
        legacy::PassManager pm;
        if (tm->addPassesToEmitFile(pm, os, nullptr, CodeGenFileType::ObjectFile))
          fail("cpu jit: the target cannot emit object files");
        pm.run(*m);
      }
      part.codegen_ms = ms_since(t0);
      part.obj = MemoryBuffer::getMemBufferCopy(StringRef(out.data(), out.size()), "nibble_kernels.o");
    } catch (...) {
      part.error = std::current_exception();
    }
  };
  // The modules to build, taken from a shared counter by `threads` threads (the caller is one).
  std::vector<Part*> todo;
  for (Part& part : parts)
    if (!part.hit) todo.push_back(&part);
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < todo.size();) build(*todo[i]);
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < std::min<int>(threads, int(todo.size())); ++t) workers.emplace_back(worker);
  worker();
  for (auto& t : workers) t.join();
  for (Part& part : parts)
    if (part.error) std::rethrow_exception(part.error);

  for (Part& part : parts) {
    if (part.hit || part.path_o.empty()) continue;
    std::error_code ec;
    std::filesystem::create_directories(I.opts.cache_dir, ec);
    const std::string tmp = part.path_o + fmt::format(".tmp{}", reinterpret_cast<uintptr_t>(&part));
    std::ofstream of(tmp, std::ios::binary);
    of.write(part.obj->getBufferStart(), std::streamsize(part.obj->getBufferSize()));
    of.close();
    if (of) {
      std::filesystem::rename(tmp, part.path_o, ec);
      std::ofstream kf(part.path_key, std::ios::binary);
      kf << part.key;
    } else {
      std::filesystem::remove(tmp, ec);
    }
  }

  auto t0 = Clock::now();
  for (Part& part : parts) {
    I.stats.emit_ms += part.emit_ms;
    I.stats.optimize_ms += part.optimize_ms;
    I.stats.codegen_ms += part.codegen_ms;
    I.objects.emplace_back(part.obj->getBufferStart(), part.obj->getBufferEnd());
    check(I.jit->addObjectFile(std::move(part.obj)), "adding kernels");
  }
  for (Part& part : parts) {
    for (const KernelSpec& s : part.specs) {
      auto addr = check(I.jit->lookup(s.symbol), "looking up a kernel");
      I.fns[s.symbol] = addr.toPtr<NibbleKernelFn>();
      I.compiled.emplace(s.symbol, s);
    }
    I.stats.kernels += int(part.specs.size());
    if (part.hit) I.stats.cache_hits += int(part.specs.size());
  }
  I.stats.codegen_ms += ms_since(t0);
  I.stats.wall_ms += ms_since(wall0);
  I.pending.clear();
}

NibbleKernelFn CpuJit::lookup(const std::string& symbol) const {
  auto it = impl_->fns.find(symbol);
  if (it == impl_->fns.end()) {
    if (impl_->pending.count(symbol)) fail("cpu jit: kernel '{}' is requested but not compiled (call compile())", symbol);
    fail("cpu jit: unknown kernel '{}'", symbol);
  }
  return it->second;
}

JitStats CpuJit::stats() const { return impl_->stats; }

const std::vector<std::vector<uint8_t>>& CpuJit::object_code() const { return impl_->objects; }

void CpuJit::set_compile_threads(int n) { impl_->compile_threads = n; }

std::string CpuJit::dump_ir(const std::vector<std::string>& symbols, bool optimized) const {
  Impl& I = *impl_;
  std::vector<KernelSpec> specs;
  for (const std::string& s : symbols) {
    auto it = I.pending.find(s);
    if (it != I.pending.end()) specs.push_back(it->second);
    else if (auto c = I.compiled.find(s); c != I.compiled.end()) specs.push_back(c->second);
    else fail("cpu jit: unknown kernel '{}'", s);
  }
  auto tm = make_target_machine(I.target);
  LLVMContext ctx;
  auto m = I.emit(ctx, specs, *tm);
  if (optimized) I.optimize(*m, *tm);
  std::string s;
  raw_string_ostream os(s);
  m->print(os, nullptr);
  return os.str();
}

}  // namespace nibble::cpu
