// Tuning: the database (round trip, malformed files, keying by device fingerprint, what a re-run
// tunes) and select-tiles honouring a table (and ignoring invalid entries).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "ir/parser.h"
#include "passes/pass.h"
#include "passes/tuning.h"
#include "support/error.h"
#include "tests/unit/tuning/tuning_test_util.h"
#include "tools/tuning_db.h"

namespace nibble::testing {
namespace {

namespace fs = std::filesystem;
using tools::TuningDb;
using tools::TuningEntry;

TuningEntry entry(int64_t rows, int64_t unroll, int64_t mt, double best_us, double default_us) {
  TuningEntry e;
  e.best = TunedSchedule{rows, unroll, mt};
  e.heuristic = TunedSchedule{64, 1, 4};
  e.best_us = best_us;
  e.default_us = default_us;
  e.best_decode_us = 1.5;
  e.default_decode_us = 2.5;
  e.best_prefill_us = 10;
  e.default_prefill_us = 20;
  e.prefill_tokens = 64;
  e.candidates = 7;
  e.rejected = 1;
  e.measured = "2026-01-01T00:00:00Z";
  return e;
}

const char* kSigA = "qmatmul q4_0 act=q8_0 N=64 K=64 layout=rows_x4 path=gemv+gemm threads=1";
const char* kSigB = "qmatmul q8_0 act=q8_0 N=512 K=64 layout=rows_x4 path=gemv+gemm threads=1";

TEST(TuningDb, RoundTrip) {
  TuningDb db;
  db.devices["dev A"].target = "cpu";
  db.devices["dev A"].about_json = R"({"cpu":"x"})";
  db.devices["dev A"].kernels[kSigA] = entry(32, 2, 8, 5, 10);
  db.devices["dev B"].kernels[kSigB] = entry(128, 1, 2, 3, 3);
  const std::string p = temp_path("roundtrip/sub/tuning.json");  // the directory is created
  fs::remove_all(fs::path(p).parent_path());
  db.save(p);
  TuningDb back = TuningDb::load(p);
  ASSERT_EQ(back.devices.size(), 2u);
  const TuningEntry* e = back.find("dev A", kSigA);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->best, KernelSchedule(TunedSchedule{32, 2, 8}));
  EXPECT_EQ(e->heuristic, KernelSchedule(TunedSchedule{64, 1, 4}));
  EXPECT_DOUBLE_EQ(e->best_us, 5);
  EXPECT_DOUBLE_EQ(e->default_us, 10);
  EXPECT_DOUBLE_EQ(e->speedup(), 2);
  EXPECT_DOUBLE_EQ(e->best_decode_us, 1.5);
  EXPECT_DOUBLE_EQ(e->default_prefill_us, 20);
  EXPECT_EQ(e->prefill_tokens, 64);
  EXPECT_EQ(e->candidates, 7);
  EXPECT_EQ(e->rejected, 1);
  EXPECT_EQ(e->measured, "2026-01-01T00:00:00Z");
  EXPECT_EQ(back.devices["dev A"].target, "cpu");
  EXPECT_EQ(back.devices["dev A"].about_json, R"({"cpu":"x"})");
  EXPECT_EQ(back.find("dev A", kSigB), nullptr);
  // Readable: indented JSON with the format first.
  std::ifstream in(p);
  std::string first, second;
  std::getline(in, first);
  std::getline(in, second);
  EXPECT_EQ(first, "{");
  EXPECT_EQ(second, "  \"format\": \"nibble-tuning\",");
}

TEST(TuningDb, MissingFileIsEmpty) {
  const std::string p = temp_path("does-not-exist.json");
  fs::remove(p);
  EXPECT_TRUE(TuningDb::load(p).devices.empty());
  EXPECT_EQ(tools::load_tuning_table(p, "cpu"), nullptr);
}

TEST(TuningDb, MalformedFilesNameTheFileAndWhere) {
  const std::string p = temp_path("bad.json");
  write_file(p, "{\"format\": \"nibble-tuning\",\n \"version\": 1, \"devices\": {,}}");
  std::string e = error_of([&] { TuningDb::load(p); });
  EXPECT_NE(e.find(p + ": not a valid tuning database (JSON error at byte"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;

  write_file(p, R"({"format": "something-else", "version": 1, "devices": {}})");
  e = error_of([&] { TuningDb::load(p); });
  EXPECT_NE(e.find(p + ": not a tuning database"), std::string::npos) << e;

  write_file(p, R"({"format": "nibble-tuning", "version": 7, "devices": {}})");
  e = error_of([&] { TuningDb::load(p); });
  EXPECT_NE(e.find("version 7"), std::string::npos) << e;

  write_file(p, R"({"format": "nibble-tuning", "version": 1, "devices": {"d": {"kernels": {"k": {"best": 1}}}}})");
  e = error_of([&] { TuningDb::load(p); });
  EXPECT_NE(e.find(p + R"(: malformed tuning database at devices["d"].kernels["k"])"), std::string::npos) << e;

  // A schedule select-tiles could not use is an error at load, not silently dropped.
  TuningDb db;
  db.devices["d"].kernels["k"] = entry(20, 1, 4, 1, 1);
  db.save(p);
  e = error_of([&] { TuningDb::load(p); });
  EXPECT_NE(e.find("rows_per_task 20 is not a positive multiple of 16"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { tools::load_tuning_table(p, "cpu"); }).find(p), std::string::npos);
}

TEST(TuningDb, KeyedByDeviceFingerprint) {
  const tools::DeviceFingerprint fp = tools::device_fingerprint("cpu");
  EXPECT_EQ(fp.target, "cpu");
  EXPECT_TRUE(fp.key.starts_with("cpu ")) << fp.key;
  EXPECT_EQ(fp.key, tools::device_fingerprint("cpu").key);  // stable
  EXPECT_NE(fp.about_json.find("features"), std::string::npos);

  TuningDb db;
  db.devices["cpu some other machine [avx2]"].kernels[kSigB] = entry(128, 1, 2, 3, 3);
  const std::string p = temp_path("keyed.json");
  db.save(p);
  EXPECT_EQ(tools::load_tuning_table(p, "cpu"), nullptr);  // only another device's entries

  db.devices[fp.key].kernels[kSigA] = entry(32, 2, 8, 5, 10);
  db.save(p);
  std::shared_ptr<const TuningTable> t = tools::load_tuning_table(p, "cpu");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->device, fp.key);
  ASSERT_EQ(t->by_signature.size(), 1u);
  EXPECT_EQ(t->by_signature.at(kSigA), KernelSchedule(TunedSchedule{32, 2, 8}));
  EXPECT_EQ(tools::load_tuning_table("", "cpu"), nullptr);
}

TEST(TuningDb, ReRunTunesOnlyWhatIsMissing) {
  TuningDb db;
  db.devices["dev"].kernels[kSigA] = entry(32, 2, 8, 5, 10);
  db.devices["other"].kernels[kSigB] = entry(32, 2, 8, 5, 10);
  EXPECT_EQ(db.missing("dev", {kSigA, kSigB, kSigA, kSigB}), (std::vector<std::string>{kSigB}));
  EXPECT_EQ(db.missing("new", {kSigA, kSigB}), (std::vector<std::string>{kSigA, kSigB}));
  db.devices["dev"].kernels[kSigB] = entry(16, 1, 4, 5, 10);
  EXPECT_TRUE(db.missing("dev", {kSigA, kSigB}).empty());
}

const char* kModule = R"(
module @m {
  weight @small : q4_0[64, 64] {layout = "rows_x4"}
  weight @big : q8_0[512, 64] {layout = "rows_x4"}
  func @forward(%x: q8_0[n_tokens, 64]) -> (f32[n_tokens, 64], f32[n_tokens, 512]) {
    %0 = weight() {ref = @small} : q4_0[64, 64]
    %1 = qmatmul(%x, %0) : f32[n_tokens, 64]
    %2 = weight() {ref = @big} : q8_0[512, 64]
    %3 = qmatmul(%x, %2) : f32[n_tokens, 512]
    return %1, %3
  }
}
)";

std::vector<const Op*> qmatmuls(const Module& m) {
  std::vector<const Op*> v;
  for (const auto& op : m.functions[0]->ops)
    if (op->op_name() == "qmatmul") v.push_back(op.get());
  return v;
}

std::unique_ptr<Module> run_select_tiles(std::shared_ptr<const TuningTable> t) {
  std::unique_ptr<Module> m = parse_module(kModule, "tuning.nir");
  PassOptions po;
  po.target = "cpu";
  po.threads = 1;
  po.tuning = std::move(t);
  PassManager pm(po);
  pm.add("select-tiles");
  pm.run(*m);
  return m;
}

TEST(SelectTiles, Signature) {
  std::unique_ptr<Module> m = run_select_tiles(nullptr);
  auto ops = qmatmuls(*m);
  EXPECT_EQ(tuning_signature(*m, *ops[0], 1), kSigA);
  EXPECT_EQ(tuning_signature(*m, *ops[1], 1), kSigB);
  EXPECT_EQ(tuning_signature(*m, *ops[0], 4), "qmatmul q4_0 act=q8_0 N=64 K=64 layout=rows_x4 path=gemv+gemm threads=4");
}

TEST(SelectTiles, HonoursATableAndIgnoresInvalidEntries) {
  std::unique_ptr<Module> plain = run_select_tiles(nullptr);
  const Op* p0 = qmatmuls(*plain)[0];
  const Op* p1 = qmatmuls(*plain)[1];
  EXPECT_FALSE(p0->attrs.bool_or("tuned", false));

  auto t = std::make_shared<TuningTable>();
  t->device = "dev";
  t->by_signature[kSigA] = TunedSchedule{32, 4, 2};
  t->by_signature["qmatmul q4_0 act=q8_0 N=64 K=64 layout=rows_x4 path=gemv+gemm threads=2"] = TunedSchedule{16, 8, 16};
  std::unique_ptr<Module> m = run_select_tiles(t);
  const Op* a = qmatmuls(*m)[0];
  EXPECT_TRUE(a->attrs.bool_or("tuned", false));
  EXPECT_EQ(a->attrs.int_or("rows_per_task", 0), 32);
  EXPECT_EQ(a->attrs.int_or("k_unroll", 0), 4);
  EXPECT_EQ(a->attrs.int_or("m_tile", 0), 2);
  EXPECT_EQ(a->attrs.string_or("path", ""), "gemv");  // the rest is the heuristic's
  EXPECT_EQ(a->attrs.int_or("gemm_from", 0), 4);
  const Op* b = qmatmuls(*m)[1];  // no entry: the heuristic
  EXPECT_FALSE(b->attrs.bool_or("tuned", false));
  EXPECT_EQ(b->attrs.int_or("rows_per_task", 0), p1->attrs.int_or("rows_per_task", -1));

  for (TunedSchedule bad : {TunedSchedule{20, 1, 4}, TunedSchedule{0, 1, 4}, TunedSchedule{32, 0, 4},
                            TunedSchedule{32, 9, 4}, TunedSchedule{32, 1, 0}, TunedSchedule{32, 1, 17}}) {
    EXPECT_FALSE(validate_tuned(bad).empty());
    t->by_signature[kSigA] = bad;
    std::unique_ptr<Module> mb = run_select_tiles(t);
    const Op* x = qmatmuls(*mb)[0];
    EXPECT_FALSE(x->attrs.bool_or("tuned", false));
    EXPECT_EQ(x->attrs.int_or("rows_per_task", 0), p0->attrs.int_or("rows_per_task", -1));
    EXPECT_EQ(x->attrs.int_or("k_unroll", 0), p0->attrs.int_or("k_unroll", -1));
  }
  // Above N: capped at N rounded up to 16 (one task).
  t->by_signature[kSigB] = TunedSchedule{4096, 1, 4};
  std::unique_ptr<Module> mc = run_select_tiles(t);
  EXPECT_EQ(qmatmuls(*mc)[1]->attrs.int_or("rows_per_task", 0), 512);
  EXPECT_TRUE(qmatmuls(*mc)[1]->attrs.bool_or("tuned", false));
}

}  // namespace
}  // namespace nibble::testing
