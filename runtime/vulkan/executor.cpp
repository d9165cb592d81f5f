#include "runtime/vulkan/executor.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>

#include <fmt/format.h>

#include "support/error.h"

namespace nibble::vk {

namespace {

constexpr uint64_t kPad = 16;            // bytes after every buffer region: unaligned 32-bit reads stay inside
constexpr uint64_t kRegionAlign = 256;   // weight/state regions start at multiples of this
constexpr uint64_t kStagingBytes = 64ull << 20;
constexpr uint64_t kFenceTimeoutNs = 120ull * 1000 * 1000 * 1000;

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

const char* feature_name(uint32_t bit) {
  switch (bit) {
    case kFeatSubgroupArith: return "subgroup arithmetic";
    case kFeatStorage16: return "16-bit storage";
    case kFeatStorage8: return "8-bit storage";
    case kFeatFloat16: return "shaderFloat16";
    case kFeatInt8: return "shaderInt8";
    case kFeatInt16: return "shaderInt16";
    case kFeatIntDot: return "integer dot product";
    default: return "?";
  }
}

std::string kind_name(BufKind k) {
  switch (k) {
    case BufKind::Arena: return "arena";
    case BufKind::Weight: return "weight";
    case BufKind::State: return "state";
    case BufKind::Tokens: return "tokens";
    case BufKind::Pos: return "pos";
  }
  return "?";
}

// Packs regions (bytes each) into pages of at most page_limit bytes; returns (page, offset) per region
// and the size of every page.
std::vector<std::pair<uint32_t, uint64_t>> pack_regions(const std::vector<uint64_t>& bytes, uint64_t page_limit,
                                                        std::vector<uint64_t>& page_sizes) {
  std::vector<std::pair<uint32_t, uint64_t>> loc;
  page_sizes.clear();
  for (uint64_t b : bytes) {
    uint64_t need = align_up(b + kPad, 4);
    if (page_sizes.empty() || (page_sizes.back() > 0 && align_up(page_sizes.back(), kRegionAlign) + need > page_limit))
      page_sizes.push_back(0);
    uint64_t off = align_up(page_sizes.back(), kRegionAlign);
    loc.push_back({uint32_t(page_sizes.size() - 1), off});
    page_sizes.back() = off + need;
  }
  return loc;
}

}  // namespace

Executor::Executor(std::shared_ptr<Context> ctx, const VulkanPlan& plan, const ExecutorOptions& opts)
    : ctx_(std::move(ctx)), plan_(plan), opts_(opts) {
  max_tokens_ = plan_.max_tokens;
  n_vocab_ = plan_.n_vocab;
  n_ctx_ = plan_.n_ctx;
  if (max_tokens_ <= 0) fail("vulkan: the plan has max_tokens = {}", max_tokens_);
  if (plan_.outputs.empty()) fail("vulkan: the plan has no outputs");
  const DeviceInfo& info = ctx_->info();
  uint32_t missing = plan_.features & ~ctx_->enabled_features();
  for (uint32_t bit = 1; missing; bit <<= 1)
    if (missing & bit) {
      fail("vulkan: the plan needs {} which device {} does not support (compile with that feature off)",
           feature_name(bit), info.name);
    }
  if (info.max_push_bytes < kPushWords * 4)
    fail("vulkan: device {} has {} bytes of push constants, nibble needs {}", info.name, info.max_push_bytes,
         kPushWords * 4);
  VkDevice dev = ctx_->device();
  try {
    VkCommandPoolCreateInfo cp{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    cp.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    cp.queueFamilyIndex = ctx_->queue_family();
    check(vkCreateCommandPool(dev, &cp, nullptr, &cmd_pool_), "vkCreateCommandPool");
    VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    check(vkCreateFence(dev, &fi, nullptr, &fence_), "vkCreateFence");

    // Memory: weights and states in pages (each at most one allocation), the arena, the i/o buffer.
    const uint64_t page_limit = std::max<uint64_t>(
        std::min<uint64_t>({info.max_alloc_bytes ? info.max_alloc_bytes : (1ull << 30),
                            info.max_buffer_bytes ? info.max_buffer_bytes : (1ull << 30), 1ull << 30}),
        1ull << 20);
    std::vector<uint64_t> sizes, pages;
    for (const WeightBlob& w : plan_.weights) sizes.push_back(w.bytes);
    weight_loc_ = pack_regions(sizes, page_limit, pages);
    for (uint64_t p : pages) weight_pages_.push_back(create_buffer(p, false, "weights"));
    sizes.clear();
    for (const StateBuffer& s : plan_.states) sizes.push_back(s.bytes);
    state_loc_ = pack_regions(sizes, page_limit, pages);
    for (uint64_t p : pages) state_pages_.push_back(create_buffer(p, false, "states (KV cache)"));
    arena_ = create_buffer(align_up(plan_.arena_bytes + kPad, 4), false, "the activation arena");
    tokens_off_ = 0;
    pos_off_ = align_up(uint64_t(max_tokens_) * 4 + kPad, kRegionAlign);
    io_ = create_buffer(pos_off_ + uint64_t(max_tokens_) * 4 + kPad, true, "tokens and positions");
    if (!arena_.mapped || !arena_.host_coherent || opts_.force_staging) {
      uint64_t off = 0;
      for (const Output& o : plan_.outputs) {
        readback_off_.push_back(off);
        off = align_up(off + uint64_t(o.elems(max_tokens_)) * 4, kRegionAlign);
      }
      readback_ = create_buffer(off + kPad, true, "output read-back");
    }
    upload_weights();
    reset();
    auto tp = std::chrono::steady_clock::now();
    create_pipelines(opts_.pipeline_cache_path);
    pipeline_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - tp).count();
    create_launches();
    if (info.timestamps && ctx_->timestamp_valid_bits() > 0) {
      query_count_ = uint32_t(launches_.size() + 1);
      VkQueryPoolCreateInfo qi{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
      qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
      qi.queryCount = query_count_;
      check(vkCreateQueryPool(dev, &qi, nullptr, &queries_), "vkCreateQueryPool");
    }
    set_profiling(opts_.profile);
  } catch (...) {
    release();
    throw;
  }
}

Executor::~Executor() { release(); }

void Executor::release() {
  VkDevice dev = ctx_->device();
  if (!dev) return;
  vkDeviceWaitIdle(dev);
  for (auto* recs : {&recordings_, &profiled_recordings_})
    for (auto& [n, r] : *recs)
      if (r.cmd) vkFreeCommandBuffers(dev, cmd_pool_, 1, &r.cmd);
  recordings_.clear();
  profiled_recordings_.clear();
  if (queries_) vkDestroyQueryPool(dev, queries_, nullptr);
  queries_ = VK_NULL_HANDLE;
  if (pool_) vkDestroyDescriptorPool(dev, pool_, nullptr);
  pool_ = VK_NULL_HANDLE;
  for (VkPipeline p : pipelines_) vkDestroyPipeline(dev, p, nullptr);
  pipelines_.clear();
  for (VkShaderModule m : modules_) vkDestroyShaderModule(dev, m, nullptr);
  modules_.clear();
  for (VkPipelineLayout l : pipeline_layouts_)
    if (l) vkDestroyPipelineLayout(dev, l, nullptr);
  pipeline_layouts_.clear();
  for (VkDescriptorSetLayout l : set_layouts_)
    if (l) vkDestroyDescriptorSetLayout(dev, l, nullptr);
  set_layouts_.clear();
  if (cache_) vkDestroyPipelineCache(dev, cache_, nullptr);
  cache_ = VK_NULL_HANDLE;
  for (Buffer& b : weight_pages_) destroy_buffer(b);
  for (Buffer& b : state_pages_) destroy_buffer(b);
  weight_pages_.clear();
  state_pages_.clear();
  destroy_buffer(arena_);
  destroy_buffer(io_);
  destroy_buffer(readback_);
  if (fence_) vkDestroyFence(dev, fence_, nullptr);
  fence_ = VK_NULL_HANDLE;
  if (cmd_pool_) vkDestroyCommandPool(dev, cmd_pool_, nullptr);
  cmd_pool_ = VK_NULL_HANDLE;
}

Executor::Buffer Executor::create_buffer(uint64_t size, bool host_visible, const char* what) {
  VkDevice dev = ctx_->device();
  Buffer b;
  b.size = size;
  const DeviceInfo& info = ctx_->info();
  if (info.max_buffer_bytes && size > info.max_buffer_bytes)
    fail("vulkan: out of device memory: {} needs {:.1f} MiB in one buffer, device {} allows {:.1f} MiB", what,
         double(size) / (1 << 20), info.name, double(info.max_buffer_bytes) / (1 << 20));
  VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bi.size = size;
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  VkResult r = vkCreateBuffer(dev, &bi, nullptr, &b.buf);
  if (r != VK_SUCCESS) throw_vk(r, fmt::format("creating a {} MiB buffer for {}", size >> 20, what));
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(dev, b.buf, &req);
  const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  int type = host_visible ? ctx_->memory_type(req.memoryTypeBits, hv, 0)
                          : ctx_->memory_type(req.memoryTypeBits, 0, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
  if (type < 0) {
    vkDestroyBuffer(dev, b.buf, nullptr);
    fail("vulkan: no suitable memory type for {}", what);
  }
  const uint64_t heap = ctx_->memory_heap_bytes(type);
  if ((heap && req.size > heap) || (info.max_alloc_bytes && req.size > info.max_alloc_bytes)) {
    vkDestroyBuffer(dev, b.buf, nullptr);
    fail("vulkan: out of device memory: {} needs {:.1f} MiB, device {} allows {:.1f} MiB per allocation and its "
         "heap has {:.1f} MiB",
         what, double(req.size) / (1 << 20), info.name, double(info.max_alloc_bytes) / (1 << 20),
         double(heap) / (1 << 20));
  }
  VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  ai.allocationSize = req.size;
  ai.memoryTypeIndex = uint32_t(type);
  r = vkAllocateMemory(dev, &ai, nullptr, &b.mem);
  if (r != VK_SUCCESS) {
    vkDestroyBuffer(dev, b.buf, nullptr);
    throw_vk(r, fmt::format("allocating {:.1f} MiB for {} (device {} has {} MiB of device-local memory)",
                            double(req.size) / (1 << 20), what, ctx_->info().name,
                            ctx_->info().device_local_bytes >> 20));
  }
  check(vkBindBufferMemory(dev, b.buf, b.mem, 0), "vkBindBufferMemory");
  VkMemoryPropertyFlags flags = ctx_->memory_flags(type);
  if (flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) {
    check(vkMapMemory(dev, b.mem, 0, VK_WHOLE_SIZE, 0, &b.mapped), "vkMapMemory");
    b.host_coherent = (flags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) != 0;
  }
  return b;
}

void Executor::destroy_buffer(Buffer& b) {
  VkDevice dev = ctx_->device();
  if (b.mapped) vkUnmapMemory(dev, b.mem);
  if (b.buf) vkDestroyBuffer(dev, b.buf, nullptr);
  if (b.mem) vkFreeMemory(dev, b.mem, nullptr);
  b = Buffer{};
}

void Executor::one_shot(const std::function<void(VkCommandBuffer)>& fn) {
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = cmd_pool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  VkCommandBuffer cmd;
  check(vkAllocateCommandBuffers(ctx_->device(), &ai, &cmd), "vkAllocateCommandBuffers");
  try {
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    check(vkBeginCommandBuffer(cmd, &bi), "vkBeginCommandBuffer");
    fn(cmd);
    check(vkEndCommandBuffer(cmd), "vkEndCommandBuffer");
    submit(cmd);
  } catch (...) {
    vkFreeCommandBuffers(ctx_->device(), cmd_pool_, 1, &cmd);
    throw;
  }
  vkFreeCommandBuffers(ctx_->device(), cmd_pool_, 1, &cmd);
}

void Executor::submit(VkCommandBuffer cmd) {
  if (lost_) fail("vulkan: the device was lost earlier; reload the model");
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cmd;
  VkResult r;
  {
    std::lock_guard<std::mutex> lock(ctx_->queue_mutex());
    r = vkQueueSubmit(ctx_->queue(), 1, &si, fence_);
  }
  if (r == VK_ERROR_DEVICE_LOST) lost_ = true;
  check(r, "vkQueueSubmit");
  r = vkWaitForFences(ctx_->device(), 1, &fence_, VK_TRUE, kFenceTimeoutNs);
  if (r == VK_TIMEOUT) {
    lost_ = true;
    fail("vulkan: a submission did not finish within {} s (hung kernel?)", kFenceTimeoutNs / 1000000000);
  }
  if (r == VK_ERROR_DEVICE_LOST) lost_ = true;
  check(r, "vkWaitForFences");
  check(vkResetFences(ctx_->device(), 1, &fence_), "vkResetFences");
}

void Executor::upload_weights() {
  bool all_mapped = true;
  for (const Buffer& p : weight_pages_) all_mapped = all_mapped && p.mapped && p.host_coherent;
  if (all_mapped && !opts_.force_staging) {
    for (size_t i = 0; i < plan_.weights.size(); ++i) {
      const WeightBlob& w = plan_.weights[i];
      if (!w.data && w.bytes) fail("vulkan: weight '{}' has no data", w.name);
      auto [page, off] = weight_loc_[i];
      if (w.bytes) std::memcpy(static_cast<uint8_t*>(weight_pages_[page].mapped) + off, w.data, w.bytes);
    }
    return;
  }
  uint64_t total = 0;
  for (const WeightBlob& w : plan_.weights) total += w.bytes;
  if (total == 0) return;
  Buffer staging = create_buffer(std::min(total, opts_.force_staging ? 4096 : kStagingBytes), true,
                                 "the weight staging buffer");
  try {
    struct Piece {
      uint32_t page;
      uint64_t dst, src, len;
    };
    std::vector<Piece> pieces;
    uint64_t used = 0;
    auto flush = [&] {
      if (pieces.empty()) return;
      one_shot([&](VkCommandBuffer cmd) {
        for (const Piece& p : pieces) {
          VkBufferCopy c{p.src, p.dst, p.len};
          vkCmdCopyBuffer(cmd, staging.buf, weight_pages_[p.page].buf, 1, &c);
        }
      });
      pieces.clear();
      used = 0;
    };
    for (size_t i = 0; i < plan_.weights.size(); ++i) {
      const WeightBlob& w = plan_.weights[i];
      if (!w.data && w.bytes) fail("vulkan: weight '{}' has no data", w.name);
      auto [page, off] = weight_loc_[i];
      for (uint64_t done = 0; done < w.bytes;) {
        if (used == staging.size) flush();
        uint64_t len = std::min(w.bytes - done, staging.size - used);
        std::memcpy(static_cast<uint8_t*>(staging.mapped) + used, static_cast<const uint8_t*>(w.data) + done, len);
        pieces.push_back({page, off + done, used, len});
        used += len;
        done += len;
      }
    }
    flush();
  } catch (...) {
    destroy_buffer(staging);
    throw;
  }
  destroy_buffer(staging);
}

void Executor::reset() {
  one_shot([&](VkCommandBuffer cmd) {
    for (const Buffer& p : state_pages_) vkCmdFillBuffer(cmd, p.buf, 0, VK_WHOLE_SIZE, 0);
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0,
                         nullptr, 0, nullptr);
  });
}

void Executor::create_pipelines(const std::string& cache_path) {
  VkDevice dev = ctx_->device();
  const DeviceInfo& info = ctx_->info();
  cache_path_ = cache_path;
  // The pipeline cache: reuse a file written for this very device, ignore anything else.
  std::vector<char> blob;
  if (!cache_path.empty()) {
    std::ifstream in(cache_path, std::ios::binary);
    if (in) blob.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(ctx_->physical(), &props);
    bool ok = blob.size() >= 32;
    if (ok) {
      uint32_t hdr[4];
      std::memcpy(hdr, blob.data(), 16);
      ok = hdr[0] >= 32 && hdr[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE && hdr[2] == props.vendorID &&
           hdr[3] == props.deviceID && std::memcmp(blob.data() + 16, props.pipelineCacheUUID, VK_UUID_SIZE) == 0;
    }
    if (!ok) blob.clear();
  }
  VkPipelineCacheCreateInfo pci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  pci.initialDataSize = blob.size();
  pci.pInitialData = blob.empty() ? nullptr : blob.data();
  check(vkCreatePipelineCache(dev, &pci, nullptr, &cache_), "vkCreatePipelineCache");

  set_layouts_.assign(kMaxBindings + 1, VK_NULL_HANDLE);
  pipeline_layouts_.assign(kMaxBindings + 1, VK_NULL_HANDLE);
  auto layout_for = [&](uint32_t n) {
    if (n > kMaxBindings) fail("vulkan: a kernel declares {} bindings (at most {})", n, kMaxBindings);
    if (!pipeline_layouts_[n]) {
      std::vector<VkDescriptorSetLayoutBinding> b(n);
      for (uint32_t i = 0; i < n; ++i) {
        b[i].binding = i;
        b[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        b[i].descriptorCount = 1;
        b[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
      }
      VkDescriptorSetLayoutCreateInfo li{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
      li.bindingCount = n;
      li.pBindings = b.data();
      check(vkCreateDescriptorSetLayout(dev, &li, nullptr, &set_layouts_[n]), "vkCreateDescriptorSetLayout");
      VkPushConstantRange pr{VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushWords * 4};
      VkPipelineLayoutCreateInfo pli{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
      pli.setLayoutCount = 1;
      pli.pSetLayouts = &set_layouts_[n];
      pli.pushConstantRangeCount = 1;
      pli.pPushConstantRanges = &pr;
      check(vkCreatePipelineLayout(dev, &pli, nullptr, &pipeline_layouts_[n]), "vkCreatePipelineLayout");
    }
    return pipeline_layouts_[n];
  };
  for (const Kernel& k : plan_.kernels) {
    if (k.spirv.empty()) fail("vulkan: kernel {} has no SPIR-V", k.name);
    if (k.shared_bytes > info.max_shared_bytes)
      fail("vulkan: kernel {} needs {} bytes of shared memory, device {} has {}", k.name, k.shared_bytes, info.name,
           info.max_shared_bytes);
    if (!k.spec.empty() && (k.spec[0] > info.max_workgroup_invocations || k.spec[0] > info.max_workgroup_size_x))
      fail("vulkan: kernel {} has workgroup size {}, device {} allows {}", k.name, k.spec[0], info.name,
           std::min(info.max_workgroup_invocations, info.max_workgroup_size_x));
    VkShaderModuleCreateInfo si{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    si.codeSize = k.spirv.size() * 4;
    si.pCode = k.spirv.data();
    VkShaderModule mod;
    check(vkCreateShaderModule(dev, &si, nullptr, &mod), "vkCreateShaderModule");
    modules_.push_back(mod);
    std::vector<VkSpecializationMapEntry> entries(k.spec.size());
    for (size_t i = 0; i < k.spec.size(); ++i) entries[i] = {uint32_t(i), uint32_t(4 * i), 4};
    VkSpecializationInfo spec{uint32_t(entries.size()), entries.data(), k.spec.size() * 4, k.spec.data()};
    VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    ci.stage.module = mod;
    ci.stage.pName = "main";
    ci.stage.pSpecializationInfo = k.spec.empty() ? nullptr : &spec;
    ci.layout = layout_for(k.n_bindings);
    VkPipeline p;
    VkResult r = vkCreateComputePipelines(dev, cache_, 1, &ci, nullptr, &p);
    if (r != VK_SUCCESS) throw_vk(r, "creating the pipeline of kernel " + k.name);
    pipelines_.push_back(p);
  }
  save_pipeline_cache();
}

void Executor::save_pipeline_cache() {
  if (cache_path_.empty() || !cache_) return;
  size_t size = 0;
  if (vkGetPipelineCacheData(ctx_->device(), cache_, &size, nullptr) != VK_SUCCESS) return;
  std::vector<char> data(size);
  if (vkGetPipelineCacheData(ctx_->device(), cache_, &size, data.data()) != VK_SUCCESS) return;
  std::string tmp = cache_path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("vulkan: cannot write the pipeline cache {}", tmp);
    out.write(data.data(), std::streamsize(size));
    if (!out) fail("vulkan: cannot write the pipeline cache {}", tmp);
  }
  if (std::rename(tmp.c_str(), cache_path_.c_str()) != 0) fail("vulkan: cannot rename {} to {}", tmp, cache_path_);
}

Executor::Resolved Executor::resolve(const Binding& b) const {
  switch (b.kind) {
    case BufKind::Arena: {
      if (b.offset > plan_.arena_bytes) fail("vulkan: arena offset {} beyond the arena ({} bytes)", b.offset, plan_.arena_bytes);
      uint64_t range = b.bytes ? b.bytes : plan_.arena_bytes - b.offset;
      if (b.offset + range > plan_.arena_bytes)
        fail("vulkan: arena range [{}, {}) beyond the arena ({} bytes)", b.offset, b.offset + range, plan_.arena_bytes);
      return {arena_.buf, b.offset, range, arena_.size};
    }
    case BufKind::Weight: {
      if (b.index >= plan_.weights.size()) fail("vulkan: weight index {} out of range", b.index);
      const WeightBlob& w = plan_.weights[b.index];
      if (b.offset > w.bytes) fail("vulkan: offset {} beyond weight '{}' ({} bytes)", b.offset, w.name, w.bytes);
      uint64_t range = (b.bytes ? b.bytes : w.bytes - b.offset) + kPad;
      auto [page, off] = weight_loc_[b.index];
      return {weight_pages_[page].buf, off + b.offset, range, weight_pages_[page].size};
    }
    case BufKind::State: {
      if (b.index >= plan_.states.size()) fail("vulkan: state index {} out of range", b.index);
      const StateBuffer& s = plan_.states[b.index];
      if (b.offset > s.bytes) fail("vulkan: offset {} beyond state '{}' ({} bytes)", b.offset, s.name, s.bytes);
      uint64_t range = (b.bytes ? b.bytes : s.bytes - b.offset);
      auto [page, off] = state_loc_[b.index];
      return {state_pages_[page].buf, off + b.offset, range, state_pages_[page].size};
    }
    case BufKind::Tokens:
      return {io_.buf, tokens_off_ + b.offset, uint64_t(max_tokens_) * 4, io_.size};
    case BufKind::Pos:
      return {io_.buf, pos_off_ + b.offset, uint64_t(max_tokens_) * 4, io_.size};
  }
  fail("vulkan: bad binding kind");
}

void Executor::create_launches() {
  VkDevice dev = ctx_->device();
  const DeviceInfo& info = ctx_->info();
  const uint64_t align = std::max<uint64_t>(info.min_storage_align, 4);
  const uint64_t max_range = opts_.max_binding_range ? std::min<uint64_t>(opts_.max_binding_range, info.max_storage_range)
                                                     : info.max_storage_range;

  struct Pending {
    Launch l;
    std::vector<VkDescriptorBufferInfo> infos;
  };
  std::vector<Pending> pending;
  for (uint32_t di = 0; di < plan_.dispatches.size(); ++di) {
    const Dispatch& d = plan_.dispatches[di];
    if (d.kernel >= plan_.kernels.size() || (d.batch_from > 0 && d.batch_kernel >= plan_.kernels.size()))
      fail("vulkan: dispatch {} names a missing kernel", d.label);
    const Kernel& k = plan_.kernels[d.kernel];
    if (d.bindings.size() != k.n_bindings)
      fail("vulkan: dispatch {} binds {} buffers, kernel {} declares {}", d.label, d.bindings.size(), k.name,
           k.n_bindings);
    if (d.batch_from > 0 && plan_.kernels[d.batch_kernel].n_bindings != k.n_bindings)
      fail("vulkan: dispatch {}: the batch kernel binds another number of buffers", d.label);
    if (d.params.size() > kMaxParams) fail("vulkan: dispatch {} has {} parameters (at most {})", d.label, d.params.size(), kMaxParams);
    std::vector<Resolved> res;
    for (const Binding& b : d.bindings) res.push_back(resolve(b));

    // Row slices when the sliced binding is too large for one descriptor.
    int64_t slice_rows = 0;
    if (d.slice.binding >= 0) {
      const Resolved& r = res[size_t(d.slice.binding)];
      if (r.range + align > max_range) {
        if (d.slice.row_bytes == 0) fail("vulkan: dispatch {}: bad slice", d.label);
        slice_rows = int64_t((max_range - align - kPad) / d.slice.row_bytes);
        int64_t g = std::max<int64_t>({1, d.slice.rows_per_group, d.slice.batch_rows_per_group});
        int64_t lcm = g;
        if (d.slice.rows_per_group > 0 && d.slice.batch_rows_per_group > 0)
          lcm = std::lcm(d.slice.rows_per_group, d.slice.batch_rows_per_group);
        slice_rows = slice_rows / lcm * lcm;
        if (slice_rows <= 0) fail("vulkan: dispatch {}: one row ({} bytes) exceeds maxStorageBufferRange", d.label, d.slice.row_bytes);
      }
    }
    const int64_t total_rows = slice_rows > 0 ? d.slice.rows : 0;
    for (int64_t row0 = 0; row0 == 0 || row0 < total_rows; row0 += std::max<int64_t>(slice_rows, 1)) {
      Pending p;
      p.l.dispatch = di;
      std::fill(std::begin(p.l.push), std::end(p.l.push), 0u);
      for (size_t i = 0; i < d.params.size(); ++i) p.l.push[kParamBase + i] = d.params[i];
      for (int a = 0; a < 3; ++a) {
        p.l.groups[a] = d.groups[a];
        p.l.batch_groups[a] = d.batch_groups[a];
      }
      for (size_t i = 0; i < res.size(); ++i) {
        Resolved r = res[i];
        if (slice_rows > 0 && int32_t(i) == d.slice.binding) {
          int64_t nrows = std::min(slice_rows, d.slice.rows - row0);
          r.offset += uint64_t(row0) * d.slice.row_bytes;
          r.range = uint64_t(nrows) * d.slice.row_bytes + kPad;
          p.l.push[kParamBase + d.slice.row0_param] = uint32_t(row0);
          p.l.push[kParamBase + d.slice.nrows_param] = uint32_t(nrows);
          if (d.slice.rows_per_group > 0) p.l.groups[0] = {(nrows + d.slice.rows_per_group - 1) / d.slice.rows_per_group, 0, 1};
          if (d.slice.batch_rows_per_group > 0)
            p.l.batch_groups[0] = {(nrows + d.slice.batch_rows_per_group - 1) / d.slice.batch_rows_per_group, 0, 1};
        }
        uint64_t aligned = r.offset / align * align;
        uint64_t residual = r.offset - aligned;
        uint64_t range = align_up(r.range + residual, 4);
        range = std::min(range, r.buf_size - aligned);
        if (range > max_range)
          fail("vulkan: dispatch {} binds {} bytes of the {} at binding {}, more than maxStorageBufferRange ({}) "
               "and the kernel cannot be sliced",
               d.label, range, kind_name(d.bindings[i].kind), i, max_range);
        if (range == 0) range = std::min<uint64_t>(4, r.buf_size - aligned);
        p.l.push[1 + i] = uint32_t(residual);
        p.infos.push_back({r.buf, aligned, range});
      }
      pending.push_back(std::move(p));
      if (slice_rows <= 0) break;
    }
  }

  // One pool, one set per launch, written once.
  uint32_t n_desc = 0;
  for (const Pending& p : pending) n_desc += uint32_t(p.infos.size());
  VkDescriptorPoolSize ps{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, std::max<uint32_t>(n_desc, 1)};
  VkDescriptorPoolCreateInfo pi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
  pi.maxSets = std::max<uint32_t>(uint32_t(pending.size()), 1);
  pi.poolSizeCount = 1;
  pi.pPoolSizes = &ps;
  check(vkCreateDescriptorPool(dev, &pi, nullptr, &pool_), "vkCreateDescriptorPool");
  std::vector<VkWriteDescriptorSet> writes;
  for (Pending& p : pending) {
    const Kernel& k = plan_.kernels[plan_.dispatches[p.l.dispatch].kernel];
    VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    ai.descriptorPool = pool_;
    ai.descriptorSetCount = 1;
    ai.pSetLayouts = &set_layouts_[k.n_bindings];
    check(vkAllocateDescriptorSets(dev, &ai, &p.l.set), "vkAllocateDescriptorSets");
  }
  for (Pending& p : pending) {
    for (uint32_t i = 0; i < p.infos.size(); ++i) {
      VkWriteDescriptorSet w{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
      w.dstSet = p.l.set;
      w.dstBinding = i;
      w.descriptorCount = 1;
      w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      w.pBufferInfo = &p.infos[i];
      writes.push_back(w);
    }
    launches_.push_back(p.l);
  }
  if (!writes.empty()) vkUpdateDescriptorSets(dev, uint32_t(writes.size()), writes.data(), 0, nullptr);

  // Profile slots: one per distinct label.
  std::map<std::string, uint32_t> slot;
  for (const Launch& l : launches_) {
    const std::string& label = plan_.dispatches[l.dispatch].label;
    auto [it, fresh] = slot.emplace(label, uint32_t(prof_labels_.size()));
    if (fresh) prof_labels_.push_back(label);
    launch_slot_.push_back(it->second);
  }
  prof_calls_.assign(prof_labels_.size(), 0);
  prof_seconds_.assign(prof_labels_.size(), 0);
  prof_bytes_.assign(prof_labels_.size(), 0);
}

Executor::Recording& Executor::recording(int64_t n) {
  auto& recs = profiling_ ? profiled_recordings_ : recordings_;
  auto it = recs.find(n);
  if (it != recs.end()) {
    it->second.last_use = ++use_clock_;
    return it->second;
  }
  if (recs.size() >= std::max<size_t>(opts_.max_recordings, 1)) {
    auto lru = std::min_element(recs.begin(), recs.end(),
                                [](const auto& a, const auto& b) { return a.second.last_use < b.second.last_use; });
    vkFreeCommandBuffers(ctx_->device(), cmd_pool_, 1, &lru->second.cmd);
    recs.erase(lru);
  }
  Recording r;
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = cmd_pool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  check(vkAllocateCommandBuffers(ctx_->device(), &ai, &r.cmd), "vkAllocateCommandBuffers");
  try {
    record(r, n);
  } catch (...) {
    vkFreeCommandBuffers(ctx_->device(), cmd_pool_, 1, &r.cmd);
    throw;
  }
  r.last_use = ++use_clock_;
  return recs.emplace(n, r).first->second;
}

void Executor::record(Recording& r, int64_t n) {
  VkCommandBuffer cmd = r.cmd;
  const DeviceInfo& info = ctx_->info();
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  check(vkBeginCommandBuffer(cmd, &bi), "vkBeginCommandBuffer");
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  const bool timed = profiling_ && queries_;
  if (timed) vkCmdResetQueryPool(cmd, queries_, 0, query_count_);
  if (opts_.poison) {
    vkCmdFillBuffer(cmd, arena_.buf, 0, VK_WHOLE_SIZE, 0x7FC00000u);  // quiet NaN
    mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0,
                         nullptr, 0, nullptr);
  }
  if (timed) vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queries_, 0);
  VkPipeline bound = VK_NULL_HANDLE;
  for (uint32_t li = 0; li < launches_.size(); ++li) {
    const Launch& l = launches_[li];
    const Dispatch& d = plan_.dispatches[l.dispatch];
    const bool batch = d.batch_from > 0 && n >= d.batch_from;
    const uint32_t kernel = batch ? d.batch_kernel : d.kernel;
    const GroupCount* g = batch ? l.batch_groups : l.groups;
    int64_t gx = g[0].count(n), gy = g[1].count(n), gz = g[2].count(n);
    if (gx > 0 && gy > 0 && gz > 0) {
      if (gx > info.max_group_count[0]) {  // fold x into z: kernels index x + z * num_groups.x and bound-check
        if (gz != 1) fail("vulkan: dispatch {} needs {} x {} workgroups", d.label, gx, gz);
        gz = (gx + info.max_group_count[0] - 1) / info.max_group_count[0];
        gx = (gx + gz - 1) / gz;
      }
      if (gy > info.max_group_count[1] || gz > info.max_group_count[2])
        fail("vulkan: dispatch {} needs {} x {} x {} workgroups, more than the device allows", d.label, gx, gy, gz);
      const Kernel& k = plan_.kernels[kernel];
      if (pipelines_[kernel] != bound) {
        vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipelines_[kernel]);
        bound = pipelines_[kernel];
      }
      vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline_layouts_[k.n_bindings], 0, 1, &l.set, 0,
                              nullptr);
      uint32_t push[kPushWords];
      std::memcpy(push, l.push, sizeof(push));
      push[0] = uint32_t(n);
      vkCmdPushConstants(cmd, pipeline_layouts_[k.n_bindings], VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(push), push);
      vkCmdDispatch(cmd, uint32_t(gx), uint32_t(gy), uint32_t(gz));
      mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
      mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
      vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb,
                           0, nullptr, 0, nullptr);
    }
    if (timed) vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queries_, li + 1);
  }
  if (readback_.buf) {
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0,
                         nullptr, 0, nullptr);
    for (size_t i = 0; i < plan_.outputs.size(); ++i) {
      const Output& o = plan_.outputs[i];
      Resolved src = resolve(o.binding);
      uint64_t bytes = uint64_t(o.elems(n)) * 4;
      if (bytes == 0) continue;
      VkBufferCopy c{src.offset, readback_off_[i], bytes};
      vkCmdCopyBuffer(cmd, src.buf, readback_.buf, 1, &c);
    }
    mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0,
                         nullptr);
  } else {
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr,
                         0, nullptr);
  }
  check(vkEndCommandBuffer(cmd), "vkEndCommandBuffer");
  r.timestamps = timed ? query_count_ : 0;
}

std::span<const float> Executor::forward(const int32_t* tokens, const int32_t* pos, int64_t n) {
  if (n < 1 || n > max_tokens_)
    fail("vulkan: {} tokens in one call; the plan allows 1..{} (longer inputs are chunked by the caller)", n,
         max_tokens_);
  for (int64_t i = 0; i < n; ++i) {
    if (n_vocab_ > 0 && (tokens[i] < 0 || tokens[i] >= n_vocab_))
      fail("vulkan: token id {} (at {}) is outside the vocabulary [0, {})", tokens[i], i, n_vocab_);
    if (n_ctx_ > 0 && (pos[i] < 0 || pos[i] >= n_ctx_))
      fail("vulkan: position {} (at {}) is outside the context [0, {})", pos[i], i, n_ctx_);
  }
  std::memcpy(static_cast<uint8_t*>(io_.mapped) + tokens_off_, tokens, size_t(n) * 4);
  std::memcpy(static_cast<uint8_t*>(io_.mapped) + pos_off_, pos, size_t(n) * 4);
  Recording& r = recording(n);
  submit(r.cmd);
  last_n_ = n;
  if (r.timestamps) {
    std::vector<uint64_t> ts(r.timestamps);
    check(vkGetQueryPoolResults(ctx_->device(), queries_, 0, r.timestamps, ts.size() * 8, ts.data(), 8,
                            VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
          "vkGetQueryPoolResults");
    const uint32_t bits = ctx_->timestamp_valid_bits();
    const uint64_t mask = bits >= 64 ? ~0ull : ((1ull << bits) - 1);
    const double period = ctx_->info().timestamp_period_ns * 1e-9;
    last_gpu_s_ = double((ts.back() - ts[0]) & mask) * period;
    for (size_t li = 0; li < launches_.size(); ++li) {
      const Dispatch& d = plan_.dispatches[launches_[li].dispatch];
      uint32_t s = launch_slot_[li];
      prof_seconds_[s] += double((ts[li + 1] - ts[li]) & mask) * period;
      prof_calls_[s] += 1;
      prof_bytes_[s] += d.bytes_fixed + d.bytes_per_token * double(n);
    }
  }
  const Output& o = plan_.outputs[0];
  const uint8_t* base = readback_.buf ? static_cast<const uint8_t*>(readback_.mapped) + readback_off_[0]
                                      : static_cast<const uint8_t*>(arena_.mapped) + o.binding.offset;
  return {reinterpret_cast<const float*>(base), size_t(o.elems(n))};
}

std::vector<uint32_t> Executor::output_words(size_t i) const {
  if (i >= plan_.outputs.size()) fail("vulkan: output {} of {}", i, plan_.outputs.size());
  if (last_n_ == 0) fail("vulkan: no call has run yet");
  const Output& o = plan_.outputs[i];
  if (o.binding.kind != BufKind::Arena && !readback_.buf)
    fail("vulkan: output {} is not in the arena", i);
  const uint8_t* base = readback_.buf ? static_cast<const uint8_t*>(readback_.mapped) + readback_off_[i]
                                      : static_cast<const uint8_t*>(arena_.mapped) + o.binding.offset;
  std::vector<uint32_t> w(size_t(o.elems(last_n_)));
  std::memcpy(w.data(), base, w.size() * 4);
  return w;
}

std::vector<KernelProfile> Executor::profile() const {
  std::vector<KernelProfile> p;
  for (size_t s = 0; s < prof_labels_.size(); ++s)
    if (prof_calls_[s]) p.push_back({prof_labels_[s], prof_calls_[s], prof_seconds_[s], prof_bytes_[s]});
  std::sort(p.begin(), p.end(), [](const KernelProfile& a, const KernelProfile& b) { return a.seconds > b.seconds; });
  return p;
}

std::string Executor::profile_report() const {
  std::vector<KernelProfile> p = profile();
  if (p.empty()) return profiling_ ? "vulkan profile: no calls yet\n" : "vulkan profile: not enabled\n";
  double total = 0;
  for (const KernelProfile& k : p) total += k.seconds;
  std::string s = fmt::format("GPU time per kernel on {} (timestamps; sorted):\n", ctx_->info().name);
  s += fmt::format("{:>10} {:>7} {:>10} {:>6} {:>9}  {}\n", "ms", "calls", "us/call", "%", "GB/s", "kernel");
  for (const KernelProfile& k : p)
    s += fmt::format("{:>10.3f} {:>7} {:>10.2f} {:>6.1f} {:>9.2f}  {}\n", k.seconds * 1e3, k.calls,
                     k.seconds * 1e6 / double(k.calls), total > 0 ? 100 * k.seconds / total : 0,
                     k.seconds > 0 ? k.bytes / k.seconds * 1e-9 : 0.0, k.label);
  s += fmt::format("{:>10.3f} total\n", total * 1e3);
  return s;
}

void Executor::clear_profile() {
  std::fill(prof_calls_.begin(), prof_calls_.end(), 0);
  std::fill(prof_seconds_.begin(), prof_seconds_.end(), 0.0);
  std::fill(prof_bytes_.begin(), prof_bytes_.end(), 0.0);
}

}  // namespace nibble::vk
