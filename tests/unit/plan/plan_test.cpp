// Plan files: the container (round trip, alignment, checksums), compile -> load -> run equal to
// running the GGUF on both targets, and refusal of every kind of damage: a flipped byte in each
// section, truncation, another format version, a CPU without the features the code was built for,
// malformed object code.
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <gtest/gtest.h>

#include "runtime/cpu/host_features.h"
#include "runtime/cpu/object_loader.h"
#include "runtime/plan/plan_file.h"
#include "support/error.h"
#include "tests/unit/e2e/reference_oracle.h"
#include "tools/load_module.h"
#include "tools/plan.h"
#ifdef NIBBLE_HAVE_VULKAN
#include "runtime/vulkan/device.h"
#endif

namespace nibble::testing {
namespace {

namespace fs = std::filesystem;

std::string temp(const std::string& name) {
  // Per process: ctest runs the cases of this file as concurrent processes.
  const fs::path dir = fs::temp_directory_path() / ("nibble-plan-test-" + std::to_string(getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void write_all(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// The message of the nibble::Error that f throws ("" if none).
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

tools::ExecutorOptions exec_options(const std::string& target) {
  tools::ExecutorOptions eo;
  eo.target = target;
  eo.threads = 2;
  eo.max_tokens = 64;
  eo.cache_dir = temp("jit-cache");
  return eo;
}

// Compiles a model to a plan file (once per name).
std::string compiled(const std::string& model, const std::string& target) {
  const std::string out = temp(model + "." + target + ".nplan");
  tools::LoadedModel lm = tools::load_model(shared_path("models/" + model), {256, "f16"});
  tools::compile_plan(lm, exec_options(target), model, "", out);
  return out;
}

const std::vector<int32_t> kTokens = {1, 403, 407, 261, 376, 298, 315, 421};
std::vector<int32_t> positions(size_t n) {
  std::vector<int32_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = int32_t(i);
  return p;
}

std::vector<float> logits_of_gguf(const std::string& model, const std::string& target) {
  tools::LoadedModel lm = tools::load_model(shared_path("models/" + model), {256, "f16"});
  auto ex = tools::make_executor(*lm.module, exec_options(target));
  std::span<const float> l = ex->forward(kTokens, positions(kTokens.size()));
  return {l.begin(), l.end()};
}

std::vector<float> logits_of_plan(const std::string& plan, const tools::PlanOpenOptions& o = {}) {
  tools::OpenedPlan p = tools::open_plan(plan, o);
  std::span<const float> l = p.exec->forward(kTokens, positions(kTokens.size()));
  return {l.begin(), l.end()};
}

TEST(PlanContainer, RoundTripsSectionsWithAlignment) {
  rt::PlanWriter w;
  const std::vector<uint8_t> a = {1, 2, 3}, b(5000, 7), c = {9};
  w.begin_section("small", 0, 8);
  EXPECT_EQ(w.append(a), 0u);
  EXPECT_EQ(w.append(c, 16), 16u);  // padded to its alignment inside the section
  w.begin_section("big", rt::kSectionLazyChecksum, 4096);
  EXPECT_EQ(w.append(b, 64), 0u);
  const std::string path = temp("container.nplan");
  w.write(path);
  auto pf = rt::PlanFile::open(path, true);
  ASSERT_EQ(pf->sections().size(), 2u);
  std::span<const uint8_t> s = pf->section("small");
  ASSERT_EQ(s.size(), 17u);
  EXPECT_EQ(s[0], 1);
  EXPECT_EQ(s[2], 3);
  EXPECT_EQ(s[3], 0);
  EXPECT_EQ(s[16], 9);
  EXPECT_EQ(pf->sections()[1].offset % 4096, 0u);
  EXPECT_EQ(pf->section("big").size(), 5000u);
  EXPECT_EQ(pf->section("big")[4999], 7);
  EXPECT_NE(error_of([&] { pf->section("absent"); }).find("has no 'absent' section"), std::string::npos);
}

TEST(PlanContainer, ChecksumIsIncremental) {
  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 37 + 11);
  const uint64_t whole = rt::Checksum::of(data.data(), data.size());
  for (size_t cut : {0, 1, 31, 32, 33, 500, 999}) {
    rt::Checksum c;
    c.update(data.data(), cut);
    c.update(data.data() + cut, data.size() - cut);
    EXPECT_EQ(c.finish(), whole) << cut;
  }
  data[500] ^= 1;
  EXPECT_NE(rt::Checksum::of(data.data(), data.size()), whole);
}

TEST(PlanCpu, RunsExactlyAsTheGguf) {
  for (const char* model : {"stories260K.gguf", "stories260K-q4_k_m.gguf", "stories260K-q4_0.gguf"}) {
    const std::string plan = compiled(model, "cpu");
    EXPECT_EQ(logits_of_plan(plan), logits_of_gguf(model, "cpu")) << model;  // the same code: bit for bit
    tools::PlanOpenOptions one;
    one.threads = 1;
    one.verify_weights = true;
    EXPECT_EQ(logits_of_plan(plan, one), logits_of_gguf(model, "cpu")) << model << ", 1 thread";
  }
}

TEST(PlanCpu, CarriesTheTokenizerAndMetadata) {
  const std::string plan = compiled("stories260K.gguf", "cpu");
  tools::OpenedPlan p = tools::open_plan(plan, {});
  ASSERT_TRUE(p.tokenizer);
  tools::LoadedModel lm = tools::load_model(shared_path("models/stories260K.gguf"), {256, "f16"});
  for (const char* text : {"Once upon a time", "The little dog ran.", "  spaces\nand lines"})
    EXPECT_EQ(p.tokenizer->encode(text, true, false), lm.tokenizer->encode(text, true, false)) << text;
  EXPECT_EQ(p.meta["target"], "cpu");
  EXPECT_EQ(p.meta["model"]["n_vocab"], 512);
  EXPECT_EQ(p.meta["model"]["n_ctx"], 256);
  EXPECT_EQ(p.exec->n_ctx(), 256);
}

TEST(PlanCpu, RefusesACpuWithoutItsFeatures) {
  const std::string plan = compiled("stories260K.gguf", "cpu");
  tools::PlanOpenOptions o;
  o.cpu_features_override = {"sse", "sse2"};  // a baseline x86-64 without AVX
  const std::string e = error_of([&] { tools::open_plan(plan, o); });
  if (!rt::host_cpu_features().count("avx2")) GTEST_SKIP() << "the host has no AVX2: nothing to take away";
  EXPECT_NE(e.find("with features this CPU lacks:"), std::string::npos) << e;
  EXPECT_NE(e.find("avx2"), std::string::npos) << e;
  EXPECT_NE(e.find("recompile it from the GGUF"), std::string::npos) << e;
}

// Every section, damaged in the middle: refused, naming the section. Weights are checked only with
// verify_weights (they are memory-mapped, not read, at load).
TEST(PlanCpu, RefusesEachDamagedSection) {
  const std::string plan = compiled("stories260K.gguf", "cpu");
  const std::vector<uint8_t> good = read_all(plan);
  auto pf = rt::PlanFile::open(plan);
  const std::string bad = temp("damaged.nplan");
  for (const rt::SectionInfo& s : pf->sections()) {
    std::vector<uint8_t> b = good;
    b[s.offset + s.size / 2] ^= 0x5A;
    write_all(bad, b);
    tools::PlanOpenOptions o;
    o.verify_weights = true;
    const std::string e = error_of([&] { tools::open_plan(bad, o); });
    EXPECT_NE(e.find("section '" + s.name + "'"), std::string::npos) << s.name << ": " << e;
    EXPECT_NE(e.find("corrupted"), std::string::npos) << e;
    if (s.name == "weights") {
      EXPECT_EQ(error_of([&] { tools::open_plan(bad, {}); }), "");
    }
  }
  // The header and the section table.
  for (size_t at : {size_t(20), size_t(12), size_t(40), size_t(32 + 48 + 20)}) {
    std::vector<uint8_t> b = good;
    b[at] ^= 0x01;
    write_all(bad, b);
    EXPECT_NE(error_of([&] { tools::open_plan(bad, {}); }), "") << "byte " << at;
  }
}

TEST(PlanCpu, RefusesTruncationVersionAndMagic) {
  const std::string plan = compiled("stories260K.gguf", "cpu");
  const std::vector<uint8_t> good = read_all(plan);
  const std::string bad = temp("bad.nplan");
  for (size_t n : {size_t(0), size_t(7), size_t(31), size_t(100), good.size() / 2, good.size() - 1}) {
    write_all(bad, std::vector<uint8_t>(good.begin(), good.begin() + ptrdiff_t(n)));
    const std::string e = error_of([&] { tools::open_plan(bad, {}); });
    EXPECT_NE(e, "") << n;
    if (n >= 32) {
      EXPECT_NE(e.find("truncated"), std::string::npos) << e;
    }
  }
  std::vector<uint8_t> b = good;
  b[8] = 99;  // format version
  write_all(bad, b);
  std::string e = error_of([&] { tools::open_plan(bad, {}); });
  EXPECT_NE(e.find("plan format version 99, this nibble reads version 1"), std::string::npos) << e;
  b = good;
  b[0] = 'X';
  write_all(bad, b);
  e = error_of([&] { tools::open_plan(bad, {}); });
  EXPECT_NE(e.find("not a nibble plan"), std::string::npos) << e;
}

TEST(ObjectLoader, RefusesMalformedObjects) {
  const std::vector<uint8_t> garbage(200, 0xAB);
  EXPECT_NE(error_of([&] { rt::LoadedCode::load({garbage}, "garbage"); }).find("not an ELF object"), std::string::npos);
  // A real object, cut short at several points: an error, never a crash.
  const std::string plan = compiled("stories260K.gguf", "cpu");
  auto pf = rt::PlanFile::open(plan);
  std::span<const uint8_t> code = pf->section("code");
  ASSERT_GT(code.size(), 64u);
  const uint8_t* elf = code.data();  // the first object starts the section
  ASSERT_EQ(std::memcmp(elf, "\x7f" "ELF", 4), 0);
  std::vector<uint8_t> obj(elf, elf + std::min<size_t>(code.size(), 4096));
  for (size_t n : {size_t(16), size_t(64), size_t(1000)}) {
    std::vector<uint8_t> cut(obj.begin(), obj.begin() + ptrdiff_t(std::min(n, obj.size())));
    EXPECT_NE(error_of([&] { rt::LoadedCode::load({cut}, "cut"); }), "") << n;
  }
}

#ifdef NIBBLE_HAVE_VULKAN
TEST(PlanVulkan, RunsExactlyAsTheGguf) {
  if (vk::list_devices().empty()) GTEST_SKIP() << "no Vulkan device";
  for (const char* model : {"stories260K.gguf", "stories260K-q4_k_m.gguf"}) {
    const std::string plan = compiled(model, "vulkan");
    EXPECT_EQ(logits_of_plan(plan), logits_of_gguf(model, "vulkan")) << model;
    tools::PlanOpenOptions o;
    o.target = "cpu";
    EXPECT_NE(error_of([&] { tools::open_plan(plan, o); }).find("a plan compiled for --target vulkan, not cpu"),
              std::string::npos);
  }
}
#endif

}  // namespace
}  // namespace nibble::testing
