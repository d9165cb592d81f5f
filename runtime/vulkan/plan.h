// The executable Vulkan plan: what the Vulkan runtime runs. Like rt::CpuPlan it holds no IR: SPIR-V
// per kernel with its specialization constants, dispatches with resolved buffer bindings, push
// constants and workgroup counts, the weight blobs, state sizes and the arena size.
//
// Push-constant convention shared by every kernel (128 bytes, 32 words):
//   word 0        n_tokens of this call (filled when a command buffer is recorded)
//   words 1..8    per binding, the byte offset of the tensor inside the bound range: bindings are
//                 bound at offsets rounded down to minStorageBufferOffsetAlignment (and per slice),
//                 the remainder is passed here
//   words 9..31   kernel parameters (Dispatch::params), u32 or f32 bit patterns
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nibble::vk {

inline constexpr uint32_t kPushWords = 32;
inline constexpr uint32_t kMaxBindings = 8;
inline constexpr uint32_t kParamBase = 1 + kMaxBindings;  // first kernel-parameter word
inline constexpr uint32_t kMaxParams = kPushWords - kParamBase;

enum class BufKind : uint8_t {
  Arena,   // offset into the activation arena
  Weight,  // index: plan.weights[index]; offset into it
  State,   // index: plan.states[index]; offset into it
  Tokens,  // the i32 token ids of this call
  Pos,     // the i32 positions of this call
};

struct Binding {
  BufKind kind = BufKind::Arena;
  uint32_t index = 0;
  uint64_t offset = 0;  // bytes from the start of the buffer (arena, weight blob, state)
  uint64_t bytes = 0;   // range the kernel may touch; 0: to the end of the weight/state/arena
};

// Device features a plan's SPIR-V uses; the runtime checks them and enables them on the device.
enum Feature : uint32_t {
  kFeatSubgroupArith = 1u << 0,  // GroupNonUniformArithmetic (+ Basic) in compute shaders
  kFeatStorage16 = 1u << 1,      // storageBuffer16BitAccess
  kFeatStorage8 = 1u << 2,       // storageBuffer8BitAccess
  kFeatFloat16 = 1u << 3,        // shaderFloat16
  kFeatInt8 = 1u << 4,           // shaderInt8
  kFeatInt16 = 1u << 5,          // shaderInt16
  kFeatIntDot = 1u << 6,         // shaderIntegerDotProduct (VK_KHR_shader_integer_dot_product)
};

struct Kernel {
  std::string name;                  // unique within the plan; for profiles and errors
  std::vector<uint32_t> spirv;       // validated SPIR-V words
  std::vector<uint32_t> spec;        // specialization constants: constant_id i = spec[i] (0: workgroup size)
  uint32_t n_bindings = 0;           // storage buffers at set 0, bindings 0..n-1
  uint32_t features = 0;             // Feature bits
  uint32_t shared_bytes = 0;         // shared memory it declares (checked against the device)
};

// A workgroup count along one axis for n tokens: fixed + ceil(per_token * n / div).
struct GroupCount {
  int64_t fixed = 1, per_token = 0, div = 1;
  int64_t count(int64_t n) const { return fixed + (per_token * n + div - 1) / div; }
};

// Splits a dispatch whose `binding` exceeds maxStorageBufferRange into row slices: each slice binds
// rows [row0, row0 + nrows) of the binding (row_bytes each) and gets row0 / nrows in the parameter
// words given; when rows_per_group > 0, groups.x becomes ceil(nrows / rows_per_group) per slice
// (batch_groups.x likewise with batch_rows_per_group).
struct Slice {
  int32_t binding = -1;          // -1: never sliced
  uint64_t row_bytes = 0;
  int64_t rows = 0;
  int64_t rows_per_group = 0, batch_rows_per_group = 0;
  uint32_t row0_param = 0, nrows_param = 0;  // indices into Dispatch::params
};

struct Dispatch {
  uint32_t kernel = 0;
  // Calls of at least `batch_from` tokens run `batch_kernel` with `batch_groups` (GEMM vs GEMV);
  // batch_from == 0: never. Both kernels take the same bindings and parameters.
  uint32_t batch_kernel = 0;
  int64_t batch_from = 0;
  std::vector<Binding> bindings;   // at most kMaxBindings
  std::vector<uint32_t> params;    // kernel parameters, at most kMaxParams words
  GroupCount groups[3];
  GroupCount batch_groups[3];
  Slice slice;
  std::string label;               // for profiles: the IR op it came from
  // Bytes the kernel moves (read + written), for the GB/s of --profile: fixed + per_token * n.
  double bytes_fixed = 0, bytes_per_token = 0;
};

struct WeightBlob {
  std::string name;
  const void* data = nullptr;  // owned by whoever built the plan; read once at load
  uint64_t bytes = 0;
};

struct StateBuffer {
  std::string name;
  uint64_t bytes = 0;
};

// A function result read back after a call: f32 or i32 elements, fixed + per_token * n of them.
struct Output {
  Binding binding;
  int64_t fixed_elems = 0, per_token_elems = 0;
  bool is_i32 = false;
  int64_t elems(int64_t n) const { return fixed_elems + per_token_elems * n; }
};

struct VulkanPlan {
  std::vector<Kernel> kernels;
  std::vector<Dispatch> dispatches;
  std::vector<WeightBlob> weights;
  std::vector<StateBuffer> states;
  std::vector<Output> outputs;  // outputs[0]: the logits f32 [n_tokens, n_vocab]
  uint64_t arena_bytes = 0;
  int64_t max_tokens = 0;       // the arena is sized for this many tokens per call
  int64_t n_vocab = 0;          // token ids are checked against it (0: unchecked)
  int64_t n_ctx = 0;            // positions are checked against it (0: unchecked)
  uint32_t features = 0;        // union of the kernels' Feature bits
};

}  // namespace nibble::vk
