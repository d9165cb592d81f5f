// The Vulkan runtime around the kernels: device listing and selection errors, the validation
// messenger, the persisted pipeline cache, recordings per token count, --profile, row slices of
// bindings above maxStorageBufferRange, NaN poisoning, input checks and clear out-of-memory errors;
// plus SPIR-V generation of every kernel template x format x feature variant (no device needed).
#include <filesystem>
#include <fstream>

#include "codegen/spirv/kernels.h"
#include "runtime/vulkan/executor.h"
#include "vk_test_util.h"

namespace nibble::vk::testing {
namespace {

TEST(VulkanDevices, ListAndDescribe) {
  std::vector<DeviceInfo> devs = list_devices();
  if (devs.empty()) GTEST_SKIP() << "no Vulkan device";
  for (const DeviceInfo& d : devs) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GT(d.subgroup_size, 0u);
    EXPECT_GT(d.max_storage_range, 0u);
    EXPECT_NE(d.summary().find(d.name), std::string::npos);
    EXPECT_NE(d.features().find("subgroup"), std::string::npos);
  }
  std::vector<std::string> lines = describe_devices();
  ASSERT_EQ(lines.size(), devs.size());
  EXPECT_NE(lines[0].find("integer dot product"), std::string::npos) << lines[0];
}

TEST(VulkanDevices, BadIndexIsAClearError) {
  if (list_devices().empty()) GTEST_SKIP() << "no Vulkan device";
  try {
    Context::create({99, false});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
  }
}

TEST(VulkanFeatures, ForcingAMissingFeatureOnFails) {
  DeviceInfo d;
  d.name = "test device";
  FeatureOverrides o;
  o.storage16 = true;
  EXPECT_THROW(select_features(d, o), Error);
  d.storage16 = d.subgroup_basic = d.subgroup_arithmetic = true;
  ShaderFeatures f = select_features(d, {});
  EXPECT_TRUE(f.storage16 && f.subgroup && !f.storage8 && !f.int_dot);
  o.storage16 = false;
  EXPECT_FALSE(select_features(d, o).storage16);
}

// Every template compiles to valid SPIR-V (SPIRV-Tools, Vulkan 1.2) for every format and variant.
TEST(SpirvKernels, EveryTemplateFormatAndVariantValidates) {
  // Every template for every format with all features off and all on; each single feature alone on a
  // representative subset (the variants the differential tests force run too).
  std::vector<std::pair<ShaderFeatures, bool>> fs = {{ShaderFeatures{}, true},
                                                     {ShaderFeatures{true, true, true, true, true}, true}};
  for (int bit = 0; bit < 5; ++bit)
    fs.push_back({ShaderFeatures{bit == 0, bit == 1, bit == 2, bit == 3, bit == 4}, false});
  for (const auto& [f, all] : fs) {
    std::vector<KernelSource> ks;
    std::vector<DType> types = {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                                DType::Q5_1, DType::Q8_0, DType::Q8_1, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                                DType::Q5_K, DType::Q6_K, DType::Q8_K};
    if (!all) types = {DType::F16, DType::Q5_1, DType::Q3_K, DType::Q6_K};
    for (DType t : types) {
      ks.push_back(gemv_kernel(t, true, true, {}, f));
      ks.push_back(gemm_kernel(t, false, true, {}, f));
      ks.push_back(get_rows_kernel(t, false, 64, f));
      if (all) ks.push_back(naive_matmul_kernel(t, f));
    }
    for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0})
      if (all || t == DType::Q5_1) ks.push_back(gemv_q8_kernel(t, true, true, {}, f));
    ks.push_back(quantize_kernel(DType::Q8_0, 64, f));
    ks.push_back(quantize_kernel(DType::Q8_1, 64, f));
    ks.push_back(get_rows_kernel(DType::Q4_K, true, 64, f));
    for (bool layer : {false, true}) ks.push_back(norm_kernel(layer, true, layer, 64, f));
    for (bool mask : {false, true}) ks.push_back(softmax_kernel(mask, 64, f));
    ks.push_back(rope_kernel(64, f));
    for (bool f16 : {false, true}) {
      ks.push_back(kv_write_kernel(f16, 64, f));
      ks.push_back(attention_kernel(f16, 64, 256, 1024, 64, f));   // scores in shared memory
      ks.push_back(attention_kernel(f16, 128, 4096, 1024, 64, f));  // chunked
    }
    ks.push_back(argmax_kernel(64, f));
    for (Eltwise e : {Eltwise::Add, Eltwise::Mul, Eltwise::Swiglu, Eltwise::Silu, Eltwise::Gelu})
      ks.push_back(eltwise_kernel(e, 64, f));
    for (const KernelSource& k : ks) {
      std::vector<uint32_t> words;
      ASSERT_NO_THROW(words = compile_glsl(k.glsl, k.name)) << k.name;
      EXPECT_EQ(validate_spirv(words), "") << k.name;
      uint32_t feats = spirv_features(words);
      // A variant never uses a feature it was not given.
      EXPECT_FALSE(!f.subgroup && (feats & kFeatSubgroupArith)) << k.name;
      EXPECT_FALSE(!f.storage16 && (feats & kFeatStorage16)) << k.name;
      EXPECT_FALSE(!f.storage8 && (feats & kFeatStorage8)) << k.name;
      EXPECT_FALSE(!f.float16 && (feats & kFeatFloat16)) << k.name;
      EXPECT_FALSE(!f.int_dot && (feats & kFeatIntDot)) << k.name;
    }
  }
}

class VulkanRuntime : public VulkanTest {};

TEST_F(VulkanRuntime, ValidationMessagesAreCaught) {
  if (!shared_device().validation) GTEST_SKIP() << "validation layer not enabled";
  VkBufferCreateInfo bi{};
  bi.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
  bi.size = 64;
  bi.usage = 0;  // invalid: at least one usage bit is required
  VkBuffer buf = VK_NULL_HANDLE;
  vkCreateBuffer(ctx_->device(), &bi, nullptr, &buf);
  if (buf) vkDestroyBuffer(ctx_->device(), buf, nullptr);
  std::vector<std::string> msgs = ctx_->take_messages();
  EXPECT_FALSE(msgs.empty()) << "the debug messenger saw nothing";
}

// y = qmatmul(x, w) + logits-like output, small enough for quick runs.
Graph small_graph(DType t, int64_t vocab, int64_t N, int64_t K) {
  Graph g("small");
  g.result(g.b->create("qmatmul", {g.input("x", vocab, K), g.weight("w", t, N, K, 0.5f)}));
  g.m->attrs.set("n_vocab", vocab);
  return g;
}

TEST_F(VulkanRuntime, PipelineCacheIsPersisted) {
  std::string path = (std::filesystem::temp_directory_path() / fmt::format("nibble_vk_cache_{}.bin", ::getpid())).string();
  std::filesystem::remove(path);
  Graph g = small_graph(DType::Q4_0, 8, 16, 64);
  VulkanOptions o;
  o.context = ctx_;
  o.pipeline_cache = path;
  { auto vm = VulkanModel::create(*g.m, o); }
  ASSERT_TRUE(std::filesystem::exists(path));
  EXPECT_GE(std::filesystem::file_size(path), 32u);
  {  // reloaded from the file
    auto vm = VulkanModel::create(*g.m, o);
    EXPECT_EQ(vm->forward({1}, {0}).size(), 16u);
  }
  {  // a corrupt file is ignored, then rewritten
    std::ofstream(path, std::ios::binary | std::ios::trunc) << "garbage that is not a pipeline cache header";
    auto vm = VulkanModel::create(*g.m, o);
    EXPECT_EQ(vm->forward({2}, {0}).size(), 16u);
  }
  std::filesystem::remove(path);
}

TEST_F(VulkanRuntime, RecordingsPerTokenCountAreReplayed) {
  Graph g = small_graph(DType::Q8_0, 8, 16, 64);
  VulkanOptions o;
  o.context = ctx_;
  auto vm = VulkanModel::create(*g.m, o);
  for (int i = 0; i < 4; ++i) vm->forward({int32_t(i)}, {0});
  EXPECT_EQ(vm->executor().recordings(), 1u);
  vm->forward({1, 2, 3}, iota_pos(0, 3));
  vm->forward({1, 2, 3, 4, 5}, iota_pos(0, 5));
  EXPECT_EQ(vm->executor().recordings(), 3u);
  // Bounded: least recently used recordings are dropped.
  VulkanOptions o2 = o;
  auto vm2 = VulkanModel::create(*g.m, o2);
  for (int n = 1; n <= 20; ++n) vm2->forward(std::vector<int32_t>(size_t(n), 1), iota_pos(0, size_t(n)));
  EXPECT_LE(vm2->executor().recordings(), 16u);
}

TEST_F(VulkanRuntime, ProfileReportsKernelsWithBandwidth) {
  if (!ctx_->info().timestamps) GTEST_SKIP() << "no timestamps";
  Graph g = small_graph(DType::Q4_K, 8, 64, 512);
  VulkanOptions o;
  o.context = ctx_;
  o.profile = true;
  auto vm = VulkanModel::create(*g.m, o);
  vm->forward({1}, {0});
  vm->forward({1, 2, 3, 4, 5, 6}, iota_pos(0, 6));
  std::string r = vm->profile_report();
  EXPECT_NE(r.find("qmatmul q4_k 64x512"), std::string::npos) << r;
  EXPECT_NE(r.find("GB/s"), std::string::npos) << r;
  EXPECT_NE(r.find("embedding"), std::string::npos) << r;
  std::vector<KernelProfile> p = vm->executor().profile();
  ASSERT_FALSE(p.empty());
  for (size_t i = 1; i < p.size(); ++i) EXPECT_GE(p[i - 1].seconds, p[i].seconds);  // sorted
}

// Bindings above the (forced) range limit are bound in row slices: GEMV, GEMM and get_rows.
TEST_F(VulkanRuntime, BigBindingsAreBoundInSlices) {
  Graph g("sliced");
  const int64_t V = 300, K = 256, N = 300;
  Value* table = g.weight("table", DType::Q8_0, V, 64);
  Value* x = g.b->create("embedding", {g.weight("xt", DType::F32, V, K), g.tokens});
  g.result(g.b->create("qmatmul", {x, g.weight("w", DType::Q4_0, N, K, 0.5f)}));
  g.result(g.b->create("embedding", {table, g.tokens}));
  // Static rows (6 >= gemm_from): the batch kernel is the dispatch's only kernel, sliced too.
  g.result(g.b->create("qmatmul", {g.weight("xs", DType::F32, 6, K), g.weight("w2", DType::Q4_0, N, K, 0.5f)}));
  g.m->attrs.set("n_vocab", V);
  VulkanOptions o;
  o.context = ctx_;
  o.max_tokens = 8;
  o.poison = true;
  o.max_binding_range = 16384;  // w: 300 rows x 144 bytes; table: 300 x 68 bytes
  for (bool gpu_tiles : {false, true}) {
    o.compile.auto_tiles = !gpu_tiles;  // both batch kernels: multi-token GEMV (lavapipe) and tiled GEMM
    o.compile.gemv = {64, 2, 1};
    o.compile.gemm = {64, 64, 32, 4, 4};
    auto vm = VulkanModel::create(*g.m, o);
    EXPECT_GT(vm->executor().launches(), vm->compiled().plan.dispatches.size());
    Interpreter ref(*g.m);
    for (std::vector<int32_t> ids : {std::vector<int32_t>{299}, std::vector<int32_t>{0, 5, 150, 299, 64, 7}}) {
      vm->forward(ids, iota_pos(0, ids.size()));
      RefTensor t, p;
      t.dtype = p.dtype = DType::I32;
      t.shape = p.shape = {int64_t(ids.size())};
      t.i = ids;
      p.i = iota_pos(0, ids.size());
      std::vector<RefTensor> want = ref.run({t, p});
      EXPECT_LE(normalized_error(as_floats(vm->output_words(0)), want[0].to_f32()), 4e-6);
      EXPECT_LE(normalized_error(as_floats(vm->output_words(1)), want[1].to_f32()), 1e-7);
      EXPECT_LE(normalized_error(as_floats(vm->output_words(2)), want[2].to_f32()), 4e-6);
    }
  }
}

// The discrete-GPU memory paths: weights through a (small, so chunked) staging buffer, outputs
// copied to a read-back buffer.
TEST_F(VulkanRuntime, StagedUploadsAndReadBack) {
  Graph g("staged");
  Value* x = g.input("x", 8, 256);
  g.result(g.b->create("qmatmul", {x, g.weight("w", DType::Q6_K, 40, 256, 0.5f)}));
  g.result(g.b->create("argmax", {x}));
  g.m->attrs.set("n_vocab", int64_t(8));
  Interpreter ref(*g.m);
  std::vector<int32_t> ids = {3, 1, 7};
  RefTensor t, p;
  t.dtype = p.dtype = DType::I32;
  t.shape = p.shape = {3};
  t.i = ids;
  p.i = iota_pos(0, 3);
  std::vector<RefTensor> want = ref.run({t, p});
  for (bool staged : {false, true}) {
    VulkanOptions o;
    o.context = ctx_;
    o.force_staging = staged;
    auto vm = VulkanModel::create(*g.m, o);
    std::vector<float> y = vm->forward(ids, iota_pos(0, 3));
    EXPECT_LE(normalized_error(y, want[0].to_f32()), 4e-6) << (staged ? "staged" : "mapped");
    std::vector<uint32_t> am = vm->output_words(1);
    EXPECT_EQ(std::vector<int32_t>(am.begin(), am.end()), want[1].i);
  }
}

TEST_F(VulkanRuntime, PoisonShowsUnwrittenOutputs) {
  VulkanPlan plan;
  plan.max_tokens = 4;
  plan.arena_bytes = 1024;
  plan.outputs.push_back({{BufKind::Arena, 0, 256, 64}, 0, 4, false});
  ExecutorOptions eo;
  eo.poison = true;
  Executor ex(ctx_, plan, eo);
  int32_t tok[2] = {0, 0}, pos[2] = {0, 1};
  std::span<const float> out = ex.forward(tok, pos, 2);
  ASSERT_EQ(out.size(), 8u);
  for (float v : out) EXPECT_TRUE(std::isnan(v));
}

TEST_F(VulkanRuntime, BadInputsAreClearErrors) {
  Graph g = small_graph(DType::F16, 8, 16, 64);
  g.m->attrs.set("n_ctx", int64_t(32));
  VulkanOptions o;
  o.context = ctx_;
  o.max_tokens = 4;
  auto vm = VulkanModel::create(*g.m, o);
  EXPECT_THROW(vm->forward({8}, {0}), Error);    // token outside the vocabulary
  EXPECT_THROW(vm->forward({-1}, {0}), Error);
  EXPECT_THROW(vm->forward({1}, {32}), Error);   // position outside the context
  EXPECT_THROW(vm->forward({1, 2}, {0}), Error);  // count mismatch
  int32_t t[5] = {1, 1, 1, 1, 1}, p[5] = {0, 1, 2, 3, 4};
  EXPECT_THROW(vm->executor().forward(t, p, 5), Error);  // more than max_tokens in one call
  EXPECT_EQ(vm->forward(std::vector<int32_t>(9, 1), iota_pos(0, 9)).size(), 9u * 16);  // chunked
}

TEST_F(VulkanRuntime, OutOfMemoryIsAClearError) {
  VulkanPlan plan;
  plan.max_tokens = 1;
  plan.arena_bytes = 1ull << 40;  // 1 TiB
  plan.outputs.push_back({{BufKind::Arena, 0, 0, 4}, 1, 0, false});
  try {
    Executor ex(ctx_, plan, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of device memory"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nibble::vk::testing
