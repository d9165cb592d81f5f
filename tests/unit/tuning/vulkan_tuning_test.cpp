// Tuning for the vulkan target: the signature, VulkanTiles' constraints and IR attributes, the
// database round trip of a vulkan device's entries, select-tiles honouring them, and codegen
// compiling a tuned qmatmul with its own tiles (different kernels, same results as the reference).
// The tests that run kernels, and tune's vulkan candidates, need a Vulkan device (lavapipe in CI)
// and are skipped without one.
#include <chrono>
#include <cmath>

#include <gtest/gtest.h>

#include "ir/interp/interpreter.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "passes/pass.h"
#include "passes/tuning.h"
#include "support/error.h"
#include "tests/unit/tuning/tuning_test_util.h"
#include "tools/executor.h"
#include "tools/tune_module.h"
#include "tools/tune_search.h"
#include "tools/tune_target.h"
#include "tools/tuning_db.h"
#ifdef NIBBLE_HAVE_VULKAN
#include "codegen/spirv/vulkan_compile.h"
#include "codegen/spirv/vulkan_model.h"
#include "runtime/vulkan/device.h"
#endif

namespace nibble::testing {
namespace {

using tools::TuningDb;
using tools::TuningEntry;

const char* kModule = R"(
module @m {
  weight @small : q4_0[64, 64] {layout = "rows_x4"}
  weight @big : q8_0[512, 64] {layout = "rows_x4"}
  func @forward(%x: q8_0[n_tokens, 64], %y: q8_0[2, 64]) -> (f32[n_tokens, 64], f32[n_tokens, 512], f32[2, 64]) {
    %0 = weight() {ref = @small} : q4_0[64, 64]
    %1 = qmatmul(%x, %0) : f32[n_tokens, 64]
    %2 = weight() {ref = @big} : q8_0[512, 64]
    %3 = qmatmul(%x, %2) : f32[n_tokens, 512]
    %4 = qmatmul(%y, %0) : f32[2, 64]
    return %1, %3, %4
  }
}
)";

const char* kSigSmall = "qmatmul q4_0 act=q8_0 N=64 K=64 path=gemv+gemm target=vulkan";
const char* kSigBig = "qmatmul q8_0 act=q8_0 N=512 K=64 path=gemv+gemm target=vulkan";

VulkanTiles gemv_tiles(int64_t wg, int64_t rows, int64_t tokens) {
  VulkanTiles t;
  t.gemv_wg = wg;
  t.gemv_rows = rows;
  t.batch = "gemv";
  t.batch_tokens = tokens;
  return t;
}

VulkanTiles gemm_tiles(int64_t wg, int64_t rows, std::array<int64_t, 5> g) {
  VulkanTiles t;
  t.gemv_wg = wg;
  t.gemv_rows = rows;
  t.batch = "gemm";
  t.gemm = g;
  return t;
}

std::vector<Op*> qmatmuls(Module& m) {
  std::vector<Op*> v;
  for (const auto& op : m.functions[0]->ops)
    if (op->op_name() == "qmatmul") v.push_back(op.get());
  return v;
}

std::unique_ptr<Module> run_select_tiles(const std::string& target, std::shared_ptr<const TuningTable> t) {
  std::unique_ptr<Module> m = parse_module(kModule, "vulkan-tuning.nir");
  PassOptions po;
  po.target = target;
  po.tuning = std::move(t);
  PassManager pm(po);
  pm.add("select-tiles");
  pm.run(*m);
  return m;
}

TEST(VulkanTuning, Signature) {
  std::unique_ptr<Module> m = run_select_tiles("vulkan", nullptr);
  auto ops = qmatmuls(*m);
  EXPECT_EQ(vulkan_tuning_signature(*ops[0]), kSigSmall);
  EXPECT_EQ(vulkan_tuning_signature(*ops[1]), kSigBig);
  EXPECT_EQ(vulkan_tuning_signature(*ops[2]), "qmatmul q4_0 act=q8_0 N=64 K=64 path=gemv M=2 target=vulkan");
  // Not the CPU's (no layout, no thread count): the two targets never share entries.
  EXPECT_NE(vulkan_tuning_signature(*ops[0]), tuning_signature(*m, *ops[0], 1));
}

TEST(VulkanTuning, TilesConstraintsAndEquality) {
  EXPECT_EQ(validate_tuned(gemv_tiles(8, 8, 8)), "");
  EXPECT_EQ(validate_tuned(gemm_tiles(64, 4, {128, 64, 32, 8, 8})), "");
  EXPECT_NE(validate_tuned(gemv_tiles(12, 8, 8)).find("gemv_wg 12 is not a power of two"), std::string::npos);
  EXPECT_NE(validate_tuned(gemv_tiles(2048, 8, 8)).find("gemv_wg"), std::string::npos);
  EXPECT_NE(validate_tuned(gemv_tiles(8, 0, 8)).find("gemv_rows 0"), std::string::npos);
  EXPECT_NE(validate_tuned(gemv_tiles(8, 8, 65)).find("batch_tokens 65"), std::string::npos);
  EXPECT_NE(validate_tuned(gemm_tiles(8, 8, {64, 64, 16, 4, 4})).find("bk 16 is not a multiple of 32"), std::string::npos);
  EXPECT_NE(validate_tuned(gemm_tiles(8, 8, {64, 60, 32, 4, 8})).find("not multiples"), std::string::npos);
  EXPECT_NE(validate_tuned(gemm_tiles(8, 8, {0, 64, 32, 4, 4})).find("not positive"), std::string::npos);
  VulkanTiles odd = gemv_tiles(8, 8, 8);
  odd.batch = "tiled";
  EXPECT_NE(validate_tuned(odd).find("batch 'tiled' is not gemv or gemm"), std::string::npos);
  // The batch kind not in use does not count.
  VulkanTiles a = gemv_tiles(8, 8, 8), b = a;
  b.gemm = {32, 32, 32, 4, 4};
  EXPECT_EQ(a, b);
  b.batch_tokens = 4;
  EXPECT_FALSE(a == b);
  VulkanTiles g1 = gemm_tiles(8, 8, {64, 64, 32, 4, 4}), g2 = g1;
  g2.batch_tokens = 3;
  EXPECT_EQ(g1, g2);
  g2.gemm[0] = 32;
  EXPECT_FALSE(g1 == g2);
}

TEST(VulkanTuning, TilesAsIrAttributesReadBackAndFailClearly) {
  std::unique_ptr<Module> m = run_select_tiles("vulkan", nullptr);
  Op* op = qmatmuls(*m)[0];
  EXPECT_EQ(vulkan_tiles_of(*op), std::nullopt);
  for (const VulkanTiles& t : {gemv_tiles(16, 4, 8), gemm_tiles(32, 2, {64, 32, 32, 4, 4})}) {
    set_vulkan_tiles(*op, t);
    // Printed IR (plans keep it) parses back to the same tiles.
    std::unique_ptr<Module> back = parse_module(print_module(*m), "printed.nir");
    EXPECT_EQ(vulkan_tiles_of(*qmatmuls(*back)[0]), t);
  }
  clear_vulkan_tiles(*op);
  EXPECT_EQ(vulkan_tiles_of(*op), std::nullopt);
  op->attrs.set("vk_gemv_wg", int64_t(16));
  EXPECT_NE(error_of([&] { vulkan_tiles_of(*op); }).find("without an integer vk_gemv_rows"), std::string::npos);
  set_vulkan_tiles(*op, gemv_tiles(16, 4, 8));
  op->attrs.set("vk_gemv_wg", int64_t(24));
  EXPECT_NE(error_of([&] { vulkan_tiles_of(*op); }).find("gemv_wg 24 is not a power of two"), std::string::npos);
}

TEST(VulkanTuning, SelectTilesHonoursVulkanEntriesOnly) {
  auto t = std::make_shared<TuningTable>();
  t->by_signature[kSigSmall] = gemm_tiles(16, 4, {64, 32, 32, 4, 4});
  t->by_signature[kSigBig] = TunedSchedule{32, 2, 4};  // a CPU schedule under a vulkan signature: ignored
  std::unique_ptr<Module> m = run_select_tiles("vulkan", t);
  auto ops = qmatmuls(*m);
  EXPECT_TRUE(ops[0]->attrs.bool_or("tuned", false));
  EXPECT_EQ(vulkan_tiles_of(*ops[0]), gemm_tiles(16, 4, {64, 32, 32, 4, 4}));
  EXPECT_FALSE(ops[1]->attrs.bool_or("tuned", false));
  EXPECT_EQ(vulkan_tiles_of(*ops[1]), std::nullopt);
  EXPECT_FALSE(ops[2]->attrs.bool_or("tuned", false));  // static M: another signature

  // Invalid tiles are ignored, as invalid CPU schedules are.
  t->by_signature[kSigSmall] = gemv_tiles(12, 4, 8);
  m = run_select_tiles("vulkan", t);
  EXPECT_FALSE(qmatmuls(*m)[0]->attrs.bool_or("tuned", false));
  EXPECT_EQ(vulkan_tiles_of(*qmatmuls(*m)[0]), std::nullopt);

  // The cpu target looks up CPU signatures: the vulkan entry is not its own.
  t->by_signature[kSigSmall] = gemv_tiles(16, 4, 8);
  m = run_select_tiles("cpu", t);
  EXPECT_FALSE(qmatmuls(*m)[0]->attrs.bool_or("tuned", false));
  EXPECT_EQ(vulkan_tiles_of(*qmatmuls(*m)[0]), std::nullopt);
}

TuningEntry cpu_entry(const TunedSchedule& best) {
  TuningEntry e;
  e.best = best;
  e.heuristic = TunedSchedule{64, 1, 4};
  return e;
}

TuningEntry vulkan_entry(const VulkanTiles& best) {
  TuningEntry e;
  e.best = best;
  e.heuristic = gemv_tiles(8, 8, 8);
  e.best_us = 4;
  e.default_us = 5;
  e.prefill_tokens = 64;
  e.candidates = 9;
  e.measured = "2026-01-01T00:00:00Z";
  return e;
}

TEST(VulkanTuning, DatabaseRoundTrip) {
  const std::string key = "vulkan llvmpipe (LLVM 15.0.6, 256 bits) [10005:0000] llvmpipe 1";
  TuningDb db;
  db.devices[key].target = "vulkan";
  db.devices[key].kernels[kSigSmall] = vulkan_entry(gemv_tiles(16, 2, 4));
  db.devices[key].kernels[kSigBig] = vulkan_entry(gemm_tiles(8, 8, {128, 64, 32, 8, 8}));
  db.devices["cpu x [avx2]"].kernels["qmatmul q4_0 act=q8_0 N=64 K=64 layout=rows path=gemv+gemm threads=1"] =
      cpu_entry(TunedSchedule{32, 2, 4});
  const std::string p = temp_path("vulkan-roundtrip.json");
  db.save(p);
  TuningDb back = TuningDb::load(p);
  ASSERT_NE(back.find(key, kSigSmall), nullptr);
  EXPECT_EQ(back.devices[key].target, "vulkan");
  EXPECT_EQ(back.find(key, kSigSmall)->best, KernelSchedule(gemv_tiles(16, 2, 4)));
  EXPECT_EQ(back.find(key, kSigSmall)->heuristic, KernelSchedule(gemv_tiles(8, 8, 8)));
  EXPECT_EQ(back.find(key, kSigBig)->best, KernelSchedule(gemm_tiles(8, 8, {128, 64, 32, 8, 8})));
  EXPECT_DOUBLE_EQ(back.find(key, kSigBig)->speedup(), 1.25);
  std::shared_ptr<const TuningTable> t = back.table_for(key);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->by_signature.at(kSigSmall), KernelSchedule(gemv_tiles(16, 2, 4)));
  EXPECT_EQ(back.find("cpu x [avx2]", "qmatmul q4_0 act=q8_0 N=64 K=64 layout=rows path=gemv+gemm threads=1")->best,
            KernelSchedule(TunedSchedule{32, 2, 4}));

  // A schedule that is not its device's kind: refused on save, and a malformed entry on load.
  TuningDb mixed;
  mixed.devices[key].target = "vulkan";
  mixed.devices[key].kernels[kSigSmall] = cpu_entry(TunedSchedule{32, 2, 4});
  EXPECT_NE(error_of([&] { mixed.save(p); }).find("holds a schedule of another target"), std::string::npos);
  write_file(p, R"({"format": "nibble-tuning", "version": 1, "devices": {"v": {"target": "vulkan", "kernels": {"k": {"best": {"rows_per_task": 32, "k_unroll": 1, "m_tile": 4}, "default": {}, "best_us": 1, "default_us": 1}}}}})");
  std::string e = error_of([&] { TuningDb::load(p); });
  EXPECT_NE(e.find(p + R"(: malformed tuning database at devices["v"].kernels["k"])"), std::string::npos) << e;
  write_file(p, R"({"format": "nibble-tuning", "version": 1, "devices": {"v": {"target": "vulkan", "kernels": {"k": {"best": {"gemv_wg": 12, "gemv_rows": 8, "batch": "gemv", "batch_tokens": 8}, "default": {"gemv_wg": 8, "gemv_rows": 8, "batch": "gemv", "batch_tokens": 8}, "best_us": 1, "default_us": 1}}}}})");
  e = error_of([&] { TuningDb::load(p); });
  EXPECT_NE(e.find("best: gemv_wg 12 is not a power of two"), std::string::npos) << e;
  write_file(p, R"({"format": "nibble-tuning", "version": 1, "devices": {"v": {"target": "tpu", "kernels": {}}}})");
  e = error_of([&] { TuningDb::load(p); });
  EXPECT_NE(e.find("target 'tpu' (expected cpu or vulkan)"), std::string::npos) << e;
}

#ifdef NIBBLE_HAVE_VULKAN

TEST(VulkanTuning, TilesFitTheDeviceLimits) {
  vk::DeviceInfo d;
  d.name = "test device";
  d.max_shared_bytes = 32768;
  d.max_workgroup_invocations = 256;
  d.max_workgroup_size_x = 256;
  EXPECT_EQ(vk::tiles_fit(gemv_tiles(64, 8, 8), d), "");  // 64 * 8 * 8 floats: 16 KiB
  EXPECT_NE(vk::tiles_fit(gemv_tiles(128, 8, 16), d).find("the GEMV needs 65536 bytes of shared memory, the device has 32768"),
            std::string::npos);
  EXPECT_NE(vk::tiles_fit(gemv_tiles(512, 1, 1), d).find("512 invocations per workgroup, the device allows 256"),
            std::string::npos);
  EXPECT_EQ(vk::tiles_fit(gemm_tiles(64, 4, {64, 64, 32, 4, 4}), d), "");
  EXPECT_NE(vk::tiles_fit(gemm_tiles(64, 4, {128, 128, 32, 4, 4}), d).find("1024 invocations"), std::string::npos);
  EXPECT_NE(vk::tiles_fit(gemm_tiles(64, 4, {256, 64, 64, 16, 16}), d).find("the GEMM needs"), std::string::npos);
  EXPECT_NE(vk::tiles_fit(gemv_tiles(12, 4, 4), d).find("power of two"), std::string::npos);
}

bool have_vulkan() {
  static const bool have = !vk::list_devices().empty();
  return have;
}

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  return got.size() == want.size() ? num / den : INFINITY;
}

struct Compiled {
  std::unique_ptr<Module> m;
  std::unique_ptr<vk::VulkanModel> model;
  const vk::Dispatch* qmatmul = nullptr;
};

// The tune module of a 96x128 q4_0 product, compiled for vulkan:0 (with a table when given).
Compiled compile(const tools::TuneModule& tm, std::shared_ptr<const TuningTable> table) {
  Compiled c;
  c.m = tm.build();
  tools::ExecutorOptions eo;
  eo.target = "vulkan";
  eo.max_tokens = 16;
  eo.tuning = std::move(table);
  tools::run_pipeline(*c.m, "vulkan", eo);
  c.model = vk::VulkanModel::create(*c.m, tools::vulkan_options(eo, 0));
  for (const vk::Dispatch& d : c.model->compiled().plan.dispatches)
    if (d.label.starts_with("qmatmul")) c.qmatmul = &d;
  return c;
}

std::vector<float> run(const tools::TuneModule& tm, vk::VulkanModel& model, size_t n) {
  auto t = tm.tokens(n);
  auto p = tm.positions(n);
  return model.forward({t.begin(), t.end()}, {p.begin(), p.end()});
}

TEST(VulkanTuning, CodegenCompilesATunedQmatmulWithItsOwnTiles) {
  if (!have_vulkan()) GTEST_SKIP() << "no Vulkan device";
  const tools::TuneModule tm(DType::Q4_0, 96, 128, 16);
  Compiled plain = compile(tm, nullptr);
  ASSERT_NE(plain.qmatmul, nullptr);
  const std::string sig = vulkan_tuning_signature(*qmatmuls(*plain.m)[0]);
  EXPECT_EQ(sig, "qmatmul q4_0 act=q8_0 N=96 K=128 path=gemv+gemm target=vulkan");
  const VulkanTiles dev = vk::device_tiles([&] {
    vk::VulkanCompileOptions co;
    co.device = plain.model->context()->info();
    return co;
  }());
  const vk::VulkanPlan& pp = plain.model->compiled().plan;
  EXPECT_EQ(pp.kernels[plain.qmatmul->kernel].spec, (std::vector<uint32_t>{uint32_t(dev.gemv_wg), uint32_t(dev.gemv_rows), 1}));

  // The reference on the module as built: the f32-activation kernels compute what it does (a
  // device quantizing activations on the GPU would be compared with the compiled module instead).
  const bool q8 = plain.model->context()->info().int_dot_accelerated;
  for (const VulkanTiles& tiles : {gemv_tiles(dev.gemv_wg * 2, 2, 4), gemm_tiles(8, 4, {32, 32, 32, 4, 4})}) {
    auto table = std::make_shared<TuningTable>();
    table->by_signature[sig] = tiles;
    Compiled tuned = compile(tm, table);
    ASSERT_NE(tuned.qmatmul, nullptr);
    EXPECT_TRUE(qmatmuls(*tuned.m)[0]->attrs.bool_or("tuned", false));
    const vk::VulkanPlan& tp = tuned.model->compiled().plan;
    const vk::Kernel& gemv = tp.kernels[tuned.qmatmul->kernel];
    EXPECT_EQ(gemv.spec, (std::vector<uint32_t>{uint32_t(tiles.gemv_wg), uint32_t(tiles.gemv_rows), 1}));
    ASSERT_GT(tuned.qmatmul->batch_from, 0);
    const vk::Kernel& batch = tp.kernels[tuned.qmatmul->batch_kernel];
    if (tiles.batch == "gemv") {
      EXPECT_EQ(batch.spec, (std::vector<uint32_t>{uint32_t(tiles.gemv_wg), 2, 4}));
    } else {
      EXPECT_TRUE(batch.name.starts_with("gemm_")) << batch.name;
      EXPECT_EQ(batch.spec, (std::vector<uint32_t>{64, 32, 32, 32, 4, 4}));  // workgroup (32/4) * (32/4)
    }
    EXPECT_EQ(tuned.qmatmul->groups[0].fixed, (96 + tiles.gemv_rows - 1) / tiles.gemv_rows);
    const std::unique_ptr<Module> built = tm.build();
    Interpreter ref(q8 ? *tuned.m : *built);
    for (size_t n : {size_t(1), size_t(9), size_t(16)}) {  // the GEMV, the batch kernel with a tail
      auto t = tm.tokens(n);
      auto p = tm.positions(n);
      const std::vector<float> want = ref.forward({t.begin(), t.end()}, {p.begin(), p.end()});
      EXPECT_LE(nmse(run(tm, *tuned.model, n), want), 1e-10) << n << " tokens, " << tiles.batch;
      EXPECT_LE(nmse(run(tm, *plain.model, n), want), 1e-10) << n << " tokens (device tiles)";
    }
  }
}

TEST(VulkanTuning, CodegenRefusesTilesTheDeviceCannotRun) {
  if (!have_vulkan()) GTEST_SKIP() << "no Vulkan device";
  const tools::TuneModule tm(DType::Q4_0, 96, 128, 16);
  std::unique_ptr<Module> m = tm.build();
  auto table = std::make_shared<TuningTable>();
  const vk::DeviceInfo d = vk::list_devices()[0];
  // Valid anywhere, but more shared memory than the device has.
  const int64_t rows = 64, wg = 1024;
  table->by_signature["qmatmul q4_0 act=q8_0 N=96 K=128 path=gemv+gemm target=vulkan"] = gemv_tiles(wg, rows, 64);
  ASSERT_NE(vk::tiles_fit(gemv_tiles(wg, rows, 64), d), "");
  tools::ExecutorOptions eo;
  eo.target = "vulkan";
  eo.tuning = table;
  const std::string e = error_of([&] { tools::make_executor(*m, eo); });
  EXPECT_NE(e.find("qmatmul of @w: its tuned tiles do not fit"), std::string::npos) << e;
}

TEST(VulkanTuning, TuneTargetCandidatesAndFingerprint) {
  if (!have_vulkan()) GTEST_SKIP() << "no Vulkan device";
  const tools::DeviceFingerprint fp = tools::device_fingerprint("vulkan");
  EXPECT_EQ(fp.target, "vulkan");
  EXPECT_TRUE(fp.key.starts_with("vulkan ")) << fp.key;
  EXPECT_NE(fp.key.find(" ["), std::string::npos) << fp.key;  // vendor:device ids
  EXPECT_EQ(fp.key, tools::device_fingerprint("vulkan:0").key);
  EXPECT_NE(fp.about_json.find("driver_version"), std::string::npos);
  EXPECT_NE(error_of([] { tools::make_tune_target("vulkan:99", 0); }).find("Vulkan device(s) here"), std::string::npos);

  std::unique_ptr<tools::TuneTarget> target = tools::make_tune_target("vulkan", 0);
  const vk::DeviceInfo d = vk::list_devices()[0];
  std::unique_ptr<Module> m = tools::TuneModule(DType::Q4_0, 256, 1024, 8).build();
  tools::run_pipeline(*m, target->pipeline(), target->executor_options());
  const std::vector<tools::TuneKernel> ks = tools::kernels_of(*m, *target);
  ASSERT_EQ(ks.size(), 1u);
  EXPECT_EQ(ks[0].sig, "qmatmul q4_0 act=q8_0 N=256 K=1024 path=gemv+gemm target=vulkan");
  EXPECT_EQ(ks[0].label, "q4_0 256x1024");
  vk::VulkanCompileOptions co;
  co.device = d;
  EXPECT_EQ(ks[0].heuristic, KernelSchedule(vk::device_tiles(co)));

  const std::vector<KernelSchedule> dec = target->decode_candidates(ks[0]);
  ASSERT_GE(dec.size(), 4u);
  const VulkanTiles& h = std::get<VulkanTiles>(ks[0].heuristic);
  for (const KernelSchedule& s : dec) {
    const VulkanTiles& t = std::get<VulkanTiles>(s);
    EXPECT_FALSE(t == h);
    EXPECT_EQ(vk::tiles_fit(t, d), "") << target->schedule_str(s);
    EXPECT_EQ(t.batch, h.batch);  // stage 1 varies the GEMV only
    EXPECT_EQ(t.batch_tokens, h.batch_tokens);
  }
  const VulkanTiles& first = std::get<VulkanTiles>(dec[0]);  // nearest to the heuristic first
  EXPECT_TRUE((first.gemv_wg == h.gemv_wg) != (first.gemv_rows == h.gemv_rows)) << target->schedule_str(dec[0]);

  const std::vector<KernelSchedule> pre = target->prefill_candidates(ks[0], dec[0]);
  int gemv = 0, gemm = 0;
  for (const KernelSchedule& s : pre) {
    const VulkanTiles& t = std::get<VulkanTiles>(s);
    EXPECT_EQ(t.gemv_wg, first.gemv_wg);  // stage 2 keeps the decode kernel
    EXPECT_EQ(t.gemv_rows, first.gemv_rows);
    EXPECT_EQ(vk::tiles_fit(t, d), "") << target->schedule_str(s);
    (t.batch == "gemv" ? gemv : gemm)++;
  }
  EXPECT_GT(gemv, 0);
  EXPECT_GT(gemm, 0);
}

// Every candidate passes the reference check with activations quantized on the GPU too (forced on
// lavapipe): its GEMV kernels against the compiled module's quantize ops, the tiled GEMM (which
// reads the f32 activations) against the module as built. Then the entry is complete.
TEST(VulkanTuning, TuneKernelChecksEveryCandidateAgainstItsReference) {
  if (!have_vulkan()) GTEST_SKIP() << "no Vulkan device";
  for (const char* act : {"auto", "q8"}) {
    std::unique_ptr<tools::TuneTarget> target = tools::make_vulkan_tune_target("vulkan", act);
    std::unique_ptr<Module> m = tools::TuneModule(DType::Q4_0, 64, 64, 8).build();
    tools::run_pipeline(*m, target->pipeline(), target->executor_options());
    const std::vector<tools::TuneKernel> ks = tools::kernels_of(*m, *target);
    ASSERT_EQ(ks.size(), 1u);
    const size_t decode = target->decode_candidates(ks[0]).size();
    tools::TuneProgress quiet(true);
    const auto deadline = tools::TuneClock::now() + std::chrono::seconds(120);
    const tools::TuneOutcome r = tools::tune_kernel(*target, ks[0], 16, 120, deadline, quiet, 0, 1);
    ASSERT_TRUE(r.ok) << act << ": " << r.why;
    EXPECT_EQ(r.entry.rejected, 0) << act;
    // The heuristic, every decode candidate, and prefill ones (some GEMM) besides.
    EXPECT_GT(r.entry.candidates, int(decode) + 1) << act;
    EXPECT_EQ(r.entry.heuristic, ks[0].heuristic);
    EXPECT_GT(r.entry.best_us, 0);
    EXPECT_LE(r.entry.best_us, r.entry.default_us);
    EXPECT_EQ(validate_tuned(r.entry.best), "");
  }
  EXPECT_NE(error_of([] { tools::make_vulkan_tune_target("vulkan", "int4"); }).find("expected auto, q8 or f32"),
            std::string::npos);
}

#endif  // NIBBLE_HAVE_VULKAN

}  // namespace
}  // namespace nibble::testing
