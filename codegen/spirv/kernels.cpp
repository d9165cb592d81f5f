#include "codegen/spirv/kernels.h"

#include <fmt/format.h>

#include "support/error.h"

namespace nibble::vk {

namespace {

// ---- The format table: one row per weight format, its block geometry and its decoder, split in
// two so that per-block work is done once per 32 elements:
//   pre:  statements computing what elements [j32, j32 + 32) of the block share (scales, mins);
//         sees `bo` (byte offset of the block in the weight binding) and `j32`
//   body: statements setting `v0`, `v1` to elements j8 .. j8 + 7 (j8 a multiple of 8 inside that
//         range) from pre's values
// Bytes are read through ld8/ld16/ld32 (offsets always even). The float expressions follow the
// reference decoders (ir/formats), so results match them bit for bit up to fused multiply-adds.
// Plain formats (block of 1) have a body only, in terms of `rb` (row byte offset) and `e`, and a
// one-element decoder.
struct FormatRow {
  DType type;
  int block_elems, block_bytes;
  const char* pre;
  const char* body;
  const char* dq1;  // plain formats only: returns element e of the row at rb
};

const FormatRow kFormats[] = {
    {DType::F32, 1, 4, "",
     "  const uint o = (rb >> 2) + e;\n"
     "  v0 = uintBitsToFloat(uvec4(W32[o], W32[o + 1u], W32[o + 2u], W32[o + 3u]));\n"
     "  v1 = uintBitsToFloat(uvec4(W32[o + 4u], W32[o + 5u], W32[o + 6u], W32[o + 7u]));\n",
     "  return uintBitsToFloat(W32[(rb >> 2) + e]);\n"},
    {DType::F16, 1, 2, "",
     "  const uint o = rb + 2u * e;\n"
     "  v0 = vec4(h2f2(ld32(o)), h2f2(ld32(o + 4u)));\n"
     "  v1 = vec4(h2f2(ld32(o + 8u)), h2f2(ld32(o + 12u)));\n",
     "  return h2f(ld16(rb + 2u * e));\n"},
    {DType::BF16, 1, 2, "",
     "  const uint o = rb + 2u * e;\n"
     "  v0 = vec4(bf2(ld32(o)), bf2(ld32(o + 4u)));\n"
     "  v1 = vec4(bf2(ld32(o + 8u)), bf2(ld32(o + 12u)));\n",
     "  return uintBitsToFloat(ld16(rb + 2u * e) << 16);\n"},
    // q4_0: x = (q - 8) * d; element j < 16 in the low nibble of qs[j], j >= 16 in the high one.
    {DType::Q4_0, 32, 18, "  const float d = h2f(ld16(bo));\n",
     "  const uint o = bo + 2u + (j8 & 15u), sh = (j8 & 16u) >> 2;\n"
     "  v0 = (u8x4((ld32(o) >> sh) & 0x0F0F0F0Fu) - 8.0) * d;\n"
     "  v1 = (u8x4((ld32(o + 4u) >> sh) & 0x0F0F0F0Fu) - 8.0) * d;\n",
     nullptr},
    // q4_1: x = q * d + m.
    {DType::Q4_1, 32, 20, "  const float d = h2f(ld16(bo)), m = h2f(ld16(bo + 2u));\n",
     "  const uint o = bo + 4u + (j8 & 15u), sh = (j8 & 16u) >> 2;\n"
     "  v0 = u8x4((ld32(o) >> sh) & 0x0F0F0F0Fu) * d + m;\n"
     "  v1 = u8x4((ld32(o + 4u) >> sh) & 0x0F0F0F0Fu) * d + m;\n",
     nullptr},
    // q5_0: x = (q - 16) * d; bit 4 of element j is bit j of qh.
    {DType::Q5_0, 32, 22, "  const float d = h2f(ld16(bo));\n  const uint qh32 = ld32(bo + 2u);\n",
     "  const uint qh = qh32 >> j8;\n"
     "  const uint o = bo + 6u + (j8 & 15u), sh = (j8 & 16u) >> 2;\n"
     "  v0 = (u8x4(((ld32(o) >> sh) & 0x0F0F0F0Fu) | spread4(qh)) - 16.0) * d;\n"
     "  v1 = (u8x4(((ld32(o + 4u) >> sh) & 0x0F0F0F0Fu) | spread4(qh >> 4)) - 16.0) * d;\n",
     nullptr},
    // q5_1: x = q * d + m.
    {DType::Q5_1, 32, 24,
     "  const float d = h2f(ld16(bo)), m = h2f(ld16(bo + 2u));\n  const uint qh32 = ld32(bo + 4u);\n",
     "  const uint qh = qh32 >> j8;\n"
     "  const uint o = bo + 8u + (j8 & 15u), sh = (j8 & 16u) >> 2;\n"
     "  v0 = u8x4(((ld32(o) >> sh) & 0x0F0F0F0Fu) | spread4(qh)) * d + m;\n"
     "  v1 = u8x4(((ld32(o + 4u) >> sh) & 0x0F0F0F0Fu) | spread4(qh >> 4)) * d + m;\n",
     nullptr},
    // q8_0: x = q * d, signed bytes.
    {DType::Q8_0, 32, 34, "  const float d = h2f(ld16(bo));\n",
     "  v0 = i8x4(ld32(bo + 2u + j8)) * d;\n"
     "  v1 = i8x4(ld32(bo + 6u + j8)) * d;\n",
     nullptr},
    // q8_1: x = q * d (s unused when decoding).
    {DType::Q8_1, 32, 36, "  const float d = h2f(ld16(bo));\n",
     "  v0 = i8x4(ld32(bo + 4u + j8)) * d;\n"
     "  v1 = i8x4(ld32(bo + 8u + j8)) * d;\n",
     nullptr},
    // q2_K: x = (d * sc) * q - dmin * m per 16-element sub-block; 2-bit planes at 16, scales at 0,
    // d/dmin at 80/82.
    {DType::Q2_K, 256, 84, "  const float d = h2f(ld16(bo + 80u)), dmin = h2f(ld16(bo + 82u));\n",
     "  const uint sc = ld8(bo + (j8 >> 4));\n"
     "  const float dl = d * float(sc & 15u), ml = dmin * float(sc >> 4);\n"
     "  const uint o = bo + 16u + 32u * (j8 >> 7) + (j8 & 31u), sh = 2u * ((j8 >> 5) & 3u);\n"
     "  v0 = dl * u8x4((ld32(o) >> sh) & 0x03030303u) - ml;\n"
     "  v1 = dl * u8x4((ld32(o + 4u) >> sh) & 0x03030303u) - ml;\n",
     nullptr},
    // q3_K: x = (d * (sc - 32)) * (q - 4 + 4 * hbit); hmask at 0, planes at 32, scales at 96, d at 108.
    {DType::Q3_K, 256, 110, "  const float d = h2f(ld16(bo + 108u));\n",
     "  const uint sb = j8 >> 4;\n"
     "  const uint lo = sb < 8u ? (ld8(bo + 96u + sb) & 15u) : (ld8(bo + 88u + sb) >> 4);\n"
     "  const uint hi = (ld8(bo + 104u + (sb & 3u)) >> (2u * (sb >> 2))) & 3u;\n"
     "  const float dl = d * float(int(lo | (hi << 4)) - 32);\n"
     "  const uint l = j8 & 31u, b = j8 >> 5;\n"
     "  const uint o = bo + 32u + 32u * (j8 >> 7) + l, sh = 2u * ((j8 >> 5) & 3u);\n"
     "  const uint q0 = ((ld32(o) >> sh) & 0x03030303u) | (((ld32(bo + l) >> b) & 0x01010101u) << 2);\n"
     "  const uint q1 = ((ld32(o + 4u) >> sh) & 0x03030303u) | (((ld32(bo + l + 4u) >> b) & 0x01010101u) << 2);\n"
     "  v0 = dl * (u8x4(q0) - 4.0);\n"
     "  v1 = dl * (u8x4(q1) - 4.0);\n",
     nullptr},
    // q4_K: x = (d * sc) * q - dmin * m per 32-element sub-block; scales at 4, 4-bit planes at 16.
    {DType::Q4_K, 256, 144,
     "  uint sc, mn;\n"
     "  scale_min_k4(bo + 4u, j32 >> 5, sc, mn);\n"
     "  const float dl = h2f(ld16(bo)) * float(sc), ml = h2f(ld16(bo + 2u)) * float(mn);\n",
     "  const uint o = bo + 16u + 32u * (j8 >> 6) + (j8 & 31u), sh = (j8 & 32u) >> 3;\n"
     "  v0 = dl * u8x4((ld32(o) >> sh) & 0x0F0F0F0Fu) - ml;\n"
     "  v1 = dl * u8x4((ld32(o + 4u) >> sh) & 0x0F0F0F0Fu) - ml;\n",
     nullptr},
    // q5_K: as q4_K with bit 4 of element 32 b + l at bit b of qh[l]; qh at 16, planes at 48.
    {DType::Q5_K, 256, 176,
     "  uint sc, mn;\n"
     "  scale_min_k4(bo + 4u, j32 >> 5, sc, mn);\n"
     "  const float dl = h2f(ld16(bo)) * float(sc), ml = h2f(ld16(bo + 2u)) * float(mn);\n",
     "  const uint l = j8 & 31u, b = j8 >> 5;\n"
     "  const uint o = bo + 48u + 32u * (j8 >> 6) + l, sh = (j8 & 32u) >> 3;\n"
     "  const uint q0 = ((ld32(o) >> sh) & 0x0F0F0F0Fu) | (((ld32(bo + 16u + l) >> b) & 0x01010101u) << 4);\n"
     "  const uint q1 = ((ld32(o + 4u) >> sh) & 0x0F0F0F0Fu) | (((ld32(bo + 20u + l) >> b) & 0x01010101u) << 4);\n"
     "  v0 = dl * u8x4(q0) - ml;\n"
     "  v1 = dl * u8x4(q1) - ml;\n",
     nullptr},
    // q6_K: x = (d * sc) * (q - 32) per 16-element sub-block; ql at 0, qh at 128, int8 scales at 192,
    // d at 208.
    {DType::Q6_K, 256, 210, "  const float d = h2f(ld16(bo + 208u));\n",
     "  const uint s = (j8 >> 5) & 3u, l = j8 & 31u, h = j8 >> 7;\n"
     "  const uint ol = bo + 64u * h + l + 32u * (s & 1u), shl = (s >> 1) * 4u;\n"
     "  const uint oh = bo + 128u + 32u * h + l, shh = 2u * s;\n"
     "  const float dl = d * float(bitfieldExtract(int(ld8(bo + 192u + (j8 >> 4))), 0, 8));\n"
     "  const uint q0 = ((ld32(ol) >> shl) & 0x0F0F0F0Fu) | (((ld32(oh) >> shh) & 0x03030303u) << 4);\n"
     "  const uint q1 = ((ld32(ol + 4u) >> shl) & 0x0F0F0F0Fu) | (((ld32(oh + 4u) >> shh) & 0x03030303u) << 4);\n"
     "  v0 = dl * (u8x4(q0) - 32.0);\n"
     "  v1 = dl * (u8x4(q1) - 32.0);\n",
     nullptr},
    // q8_K: x = d * q with an f32 d.
    {DType::Q8_K, 256, 292, "  const float d = uintBitsToFloat(ld32(bo));\n",
     "  v0 = d * i8x4(ld32(bo + 4u + j8));\n"
     "  v1 = d * i8x4(ld32(bo + 8u + j8));\n",
     nullptr},
};

const FormatRow* find_format(DType t) {
  for (const FormatRow& r : kFormats)
    if (r.type == t) return &r;
  return nullptr;
}

const FormatRow& format(DType t) {
  const FormatRow* r = find_format(t);
  if (!r) fail("spirv: no GPU decoder for format {}", dtype_name(t));
  return *r;
}

std::string fname(DType t) { return dtype_name(t); }

bool pow2(uint32_t x) { return x && !(x & (x - 1)); }

// ---- Shader text building blocks.

std::string prelude(const ShaderFeatures& f, uint32_t wg) {
  std::string s = "#version 450\n#extension GL_EXT_control_flow_attributes : enable\n";
  if (f.subgroup) s += "#extension GL_KHR_shader_subgroup_basic : require\n#extension GL_KHR_shader_subgroup_arithmetic : require\n";
  if (f.storage16) s += "#extension GL_EXT_shader_16bit_storage : require\n";
  if (f.storage8) s += "#extension GL_EXT_shader_8bit_storage : require\n";
  if (f.float16) s += "#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require\n";
  if (f.int_dot) s += "#extension GL_EXT_spirv_intrinsics : require\n";
  s += fmt::format(
      "layout(local_size_x_id = 0) in;\n"
      "layout(constant_id = 0) const uint WG = {}u;\n"
      "layout(push_constant) uniform PC {{ uint n_tokens; uint boff[8]; uint p[23]; }} pc;\n"
      "#define P(i) pc.p[i]\n"
      "#define PF(i) uintBitsToFloat(pc.p[i])\n"
      "#define GX (gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x)\n"
      "#define NEG_INF uintBitsToFloat(0xFF800000u)\n",
      wg);
  if (f.float16) {
    s += "float h2f(uint h) { return float(unpackFloat2x16(h).x); }\n"
         "vec2 h2f2(uint w) { return vec2(unpackFloat2x16(w)); }\n";
  } else {
    s += "float h2f(uint h) { return unpackHalf2x16(h).x; }\n"
         "vec2 h2f2(uint w) { return unpackHalf2x16(w); }\n";
  }
  // f32 -> f16 in software, rounding to nearest even as ggml (and the reference executor) do: the
  // rounding of float16_t() and packHalf2x16 is the implementation's choice (NVIDIA's differs from
  // lavapipe's, which put every f16-rounded value 1 ulp off now and then). f16 -> f32 is exact.
  s += "uint f2h(float x) {\n"
       "  const uint u = floatBitsToUint(x), sgn = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu;\n"
       "  if (a >= 0x7F800000u) return sgn | (a > 0x7F800000u ? 0x7E00u : 0x7C00u);\n"
       "  if (a >= 0x477FF000u) return sgn | 0x7C00u;\n"
       "  if (a < 0x38800000u) {\n"
       "    const uint e = a >> 23;\n"
       "    if (e < 102u) return sgn;\n"
       "    const uint m = (a & 0x7FFFFFu) | 0x800000u, sh = 126u - e;\n"
       "    uint r = m >> sh;\n"
       "    const uint rem = m & ((1u << sh) - 1u), half_ = 1u << (sh - 1u);\n"
       "    if (rem > half_ || (rem == half_ && (r & 1u) != 0u)) r += 1u;\n"
       "    return sgn | r;\n"
       "  }\n"
       "  uint r = (a >> 13) - (112u << 10);\n"
       "  const uint rem = a & 0x1FFFu;\n"
       "  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u) != 0u)) r += 1u;\n"
       "  return sgn | r;\n"
       "}\n"
       "float round16(float x) { return h2f(f2h(x)); }\n";
  s += "vec2 bf2(uint w) { return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xFFFF0000u)); }\n"
       "vec4 u8x4(uint w) { return vec4(uvec4(w, w >> 8, w >> 16, w >> 24) & 0xFFu); }\n"
       "vec4 i8x4(uint w) { return vec4(bitfieldExtract(int(w), 0, 8), bitfieldExtract(int(w), 8, 8),\n"
       "                                bitfieldExtract(int(w), 16, 8), bitfieldExtract(int(w), 24, 8)); }\n"
       "// bit i of b (i < 4) to bit 4 of byte i\n"
       "uint spread4(uint b) { return ((b & 1u) << 4) | ((b & 2u) << 11) | ((b & 4u) << 18) | ((b & 8u) << 25); }\n";
  return s;
}

// A storage buffer at `binding` seen as an array of `type` named `name`.
std::string buffer(uint32_t binding, const std::string& name, const std::string& type, bool readonly) {
  return fmt::format("layout(std430, set = 0, binding = {}) {}buffer {}_ {{ {} {}[]; }};\n", binding,
                     readonly ? "readonly " : "", name, type, name);
}

// The weight binding (W32, W16, W8 views) and its byte readers. Offsets are bytes, always even.
std::string weight_binding(uint32_t binding, const ShaderFeatures& f) {
  std::string s = buffer(binding, "W32", "uint", true);
  if (f.storage16) s += buffer(binding, "W16", "uint16_t", true);
  if (f.storage8) s += buffer(binding, "W8", "uint8_t", true);
  if (f.storage8)
    s += "uint ld8(uint o) { return uint(W8[o]); }\n";
  else
    s += "uint ld8(uint o) { return (W32[o >> 2] >> ((o & 3u) << 3)) & 0xFFu; }\n";
  if (f.storage16) {
    s += "uint ld16(uint o) { return uint(W16[o >> 1]); }\n"
         "uint ld32(uint o) { return uint(W16[o >> 1]) | (uint(W16[(o >> 1) + 1u]) << 16); }\n";
  } else {
    s += "uint ld16(uint o) { return (W32[o >> 2] >> ((o & 2u) << 3)) & 0xFFFFu; }\n"
         "uint ld32(uint o) {\n"
         "  const uint i = o >> 2;\n"
         "  return (o & 2u) == 0u ? W32[i] : ((W32[i] >> 16) | (W32[i + 1u] << 16));\n"
         "}\n";
  }
  // A 32-bit read at a 4-aligned offset: one load whatever the storage variant.
  s += "uint ld32a(uint o) { return W32[o >> 2]; }\n";
  // q4_K/q5_K 6-bit scale and min of sub-block s from the 12 scale bytes at q (get_scale_min_k4).
  s += "void scale_min_k4(uint q, uint s, out uint sc, out uint mn) {\n"
       "  if (s < 4u) { sc = ld8(q + s) & 63u; mn = ld8(q + 4u + s) & 63u; }\n"
       "  else { const uint b = ld8(q + 4u + s);\n"
       "         sc = (b & 15u) | ((ld8(q + s - 4u) >> 6) << 4); mn = (b >> 4) | ((ld8(q + s) >> 6) << 4); }\n"
       "}\n";
  return s;
}

// Workgroup reductions of one value (uniform control flow only).
std::string reductions(const ShaderFeatures& f) {
  std::string s = "shared float red_[WG];\n";
  for (const char* op : {"sum", "max"}) {
    const bool sum = std::string(op) == "sum";
    const char* comb = sum ? "a + b" : "max(a, b)";
    s += fmt::format("float comb_{}(float a, float b) {{ return {}; }}\n", op, comb);
    if (f.subgroup) {
      s += fmt::format(
          "float wg_{0}(float v) {{\n"
          "  v = {1}(v);\n"
          "  if (gl_NumSubgroups == 1u) return v;\n"
          "  barrier();\n"
          "  if (subgroupElect()) red_[gl_SubgroupID] = v;\n"
          "  barrier();\n"
          "  float r = red_[0];\n"
          "  for (uint i = 1u; i < gl_NumSubgroups; ++i) r = comb_{0}(r, red_[i]);\n"
          "  return r;\n"
          "}}\n",
          op, sum ? "subgroupAdd" : "subgroupMax");
    } else {
      s += fmt::format(
          "float wg_{0}(float v) {{\n"
          "  const uint tid = gl_LocalInvocationID.x;\n"
          "  barrier();\n"
          "  red_[tid] = v;\n"
          "  barrier();\n"
          "  [[unroll]] for (uint s = WG / 2u; s > 0u; s >>= 1u) {{\n"
          "    if (tid < s) red_[tid] = comb_{0}(red_[tid], red_[tid + s]);\n"
          "    barrier();\n"
          "  }}\n"
          "  return red_[0];\n"
          "}}\n",
          op);
    }
  }
  return s;
}

// Reduces acc[0 .. NV) across the workgroup and calls store_out(i, sum) on invocation i < NV.
// Needs `shared float gred[NV * WG]`.
std::string reduce_many(const ShaderFeatures& f, const std::string& nv) {
  if (f.subgroup)
    return fmt::format(
        "  for (uint i = 0u; i < {0}; ++i) {{\n"
        "    const float s = subgroupAdd(acc[i]);\n"
        "    if (subgroupElect()) gred[i * WG + gl_SubgroupID] = s;\n"
        "  }}\n"
        "  barrier();\n"
        "  for (uint o = tid; o < {0}; o += WG) {{\n"
        "    float s = 0.0;\n"
        "    for (uint j = 0u; j < gl_NumSubgroups; ++j) s += gred[o * WG + j];\n"
        "    store_out(o, s);\n"
        "  }}\n",
        nv);
  return fmt::format(
      "  for (uint i = 0u; i < {0}; ++i) gred[i * WG + tid] = acc[i];\n"
      "  barrier();\n"
      "  [[unroll]] for (uint s = WG / 2u; s > 0u; s >>= 1u) {{\n"
      "    if (tid < s)\n"
      "      for (uint i = 0u; i < {0}; ++i) gred[i * WG + tid] += gred[i * WG + tid + s];\n"
      "    barrier();\n"
      "  }}\n"
      "  for (uint o = tid; o < {0}; o += WG) store_out(o, gred[o * WG]);\n",
      nv);
}

std::string variant_name(const std::string& base, const ShaderFeatures& f) { return base + "." + f.str(); }

// Binding declarations of the matmul kernels (after w at 0): a, out, [bias], [residual].
std::string matmul_bindings(bool bias, bool residual, uint32_t& n) {
  std::string s = buffer(1, "A", "float", true) + buffer(1, "A4", "vec4", true) + buffer(2, "O", "float", false);
  n = 3;
  if (bias) s += buffer(n++, "BIAS", "float", true);
  if (residual) s += buffer(n++, "RES", "float", true);
  return s;
}

// The epilogue store: y[t, col] = v (+ bias[col]) (+ residual[t, col]).
std::string store_value(bool bias, bool residual, uint32_t n_bind_before_res) {
  std::string s = "    const uint idx = t * N + col;\n";
  if (bias) s += "    v += BIAS[(pc.boff[3] >> 2) + col];\n";
  if (residual) s += fmt::format("    v += RES[(pc.boff[{}] >> 2) + idx];\n", n_bind_before_res);
  s += "    O[(pc.boff[2] >> 2) + idx] = v;\n";
  return s;
}

}  // namespace

std::string ShaderFeatures::str() const {
  std::string s;
  auto add = [&s](bool on, const char* n) {
    if (on) s += (s.empty() ? "" : "+") + std::string(n);
  };
  add(subgroup, "sg");
  add(storage16, "s16");
  add(storage8, "s8");
  add(float16, "f16");
  add(int_dot, "dot");
  return s.empty() ? "base" : s;
}

bool gpu_format_supported(DType t) { return find_format(t) != nullptr; }

// Blocks whose size is a multiple of 4 start 4-aligned (weight regions and slices are aligned), so
// their 32-bit reads at 4-aligned offsets inside the block need one load: ld32 -> ld32a there.
bool aligned_blocks(int block_bytes) { return block_bytes % 4 == 0; }

std::string aligned_reads(std::string body, int block_bytes) {
  if (!aligned_blocks(block_bytes)) return body;
  for (size_t p = 0; (p = body.find("ld32(", p)) != std::string::npos; p += 6) body.replace(p, 5, "ld32a(");
  return body;
}

std::string format_decoder_glsl(DType t) {
  const FormatRow& r = format(t);
  std::string s = fmt::format("// {} decoder: {} elements in {} bytes per block\n", dtype_name(t), r.block_elems,
                              r.block_bytes);
  if (r.block_elems == 1) {
    s += "#define UNIT 8u\n";
    s += std::string("void dq8(uint rb, uint e, out vec4 v0, out vec4 v1) {\n") + r.body + "}\n";
    s += "void dqu(uint rb, uint e, out vec4 v[2]) { dq8(rb, e, v[0], v[1]); }\n";
    s += std::string("float dq1(uint rb, uint e) {\n") + r.dq1 + "}\n";
    return s;
  }
  // dq8: one 8-element group; dqu: the 32 elements [e, e + 32) (e % 32 == 0), the prologue once.
  s += "#define UNIT 32u\n";
  s += fmt::format(
      "void dq8(uint rb, uint e, out vec4 v0, out vec4 v1) {{\n"
      "  const uint bo = rb + (e / {0}u) * {1}u, j8 = e % {0}u, j32 = j8 & ~31u;\n",
      r.block_elems, r.block_bytes);
  const std::string pre = aligned_reads(r.pre, r.block_bytes), body = aligned_reads(r.body, r.block_bytes);
  s += pre + body + "}\n";
  s += fmt::format(
      "void dqu(uint rb, uint e, out vec4 v[8]) {{\n"
      "  const uint bo = rb + (e / {0}u) * {1}u, j32 = e % {0}u;\n",
      r.block_elems, r.block_bytes);
  s += pre;
  for (int i = 0; i < 4; ++i)
    s += fmt::format("  {{\n    const uint j8 = j32 + {}u;\n    vec4 v0, v1;\n{}    v[{}] = v0;\n    v[{}] = v1;\n  }}\n",
                     8 * i, body, 2 * i, 2 * i + 1);
  s += "}\n";
  s += "float dq1(uint rb, uint e) {\n"
       "  vec4 a, b;\n  dq8(rb, e & ~7u, a, b);\n  const uint i = e & 7u;\n  return i < 4u ? a[i] : b[i - 4u];\n}\n";
  return s;
}

// Activations as vec4s when the tensor is 16-byte aligned in its binding and K % 4 == 0 (uniform).
const char* kActivationLoads =
    "bool a_vec;\n"
    "vec4 ld_a4(uint i) { return a_vec ? A4[i >> 2] : vec4(A[i], A[i + 1u], A[i + 2u], A[i + 3u]); }\n";

KernelSource gemv_kernel(DType w, bool bias, bool residual, const GemvTiles& t, const ShaderFeatures& f) {
  if (!pow2(t.wg)) fail("spirv: GEMV workgroup size {} is not a power of two", t.wg);
  KernelSource k;
  k.name = variant_name(fmt::format("gemv_{}{}{}", fname(w), bias ? "_bias" : "", residual ? "_res" : ""), f);
  k.spec = {t.wg, t.rows, t.tokens};
  k.shared_bytes = t.rows * t.tokens * t.wg * 4;
  const bool plain = format(w).block_elems == 1;
  std::string s = prelude(f, t.wg);
  s += "layout(constant_id = 1) const uint NR = 2u;\nlayout(constant_id = 2) const uint NT = 1u;\n";
  s += weight_binding(0, f) + matmul_bindings(bias, residual, k.n_bindings);
  s += format_decoder_glsl(w);
  s += kActivationLoads;
  s += "shared float gred[NR * NT * WG];\n";
  s += "uint N, row0, nrows, M, r0, t0;\n";
  s += "void store_out(uint i, float v) {\n"
       "  const uint r = i / NT, t = t0 + i % NT;\n"
       "  if (r0 + r < nrows && t < M) {\n"
       "    const uint col = row0 + r0 + r;\n" +
       store_value(bias, residual, bias ? 4 : 3) + "  }\n}\n";
  s += "void main() {\n"
       "  const uint tid = gl_LocalInvocationID.x;\n"
       "  N = P(0); row0 = P(3); nrows = P(4);\n"
       "  const uint K = P(1), RB = P(2);\n"
       "  M = P(5) + P(6) * pc.n_tokens;\n"
       "  r0 = GX * NR;\n"
       "  if (r0 >= nrows) return;\n"
       "  t0 = gl_WorkGroupID.y * NT;\n"
       "  a_vec = (pc.boff[1] & 15u) == 0u && (K & 3u) == 0u;\n"
       "  const uint wb = pc.boff[0] + r0 * RB, ab = pc.boff[1] >> 2;\n"
       "  const uint last_r = nrows - 1u - r0, last_t = M - 1u;\n"
       "  const uint NV = UNIT / 4u;\n"
       "  float acc[NR * NT];\n"
       "  for (uint i = 0u; i < NR * NT; ++i) acc[i] = 0.0;\n"
       "  const uint units = K / UNIT;\n"
       "  for (uint u = tid; u < units; u += WG) {\n"
       "    const uint e = u * UNIT;\n"
       "    vec4 a[NT * NV];\n"
       "    for (uint t = 0u; t < NT; ++t) {\n"
       "      const uint ai = ab + min(t0 + t, last_t) * K + e;\n"
       "      for (uint i = 0u; i < NV; ++i) a[t * NV + i] = ld_a4(ai + 4u * i);\n"
       "    }\n"
       "    for (uint r = 0u; r < NR; ++r) {\n"
       "      vec4 wv[NV];\n"
       "      dqu(wb + min(r, last_r) * RB, e, wv);\n"
       "      for (uint t = 0u; t < NT; ++t) {\n"
       "        float d = 0.0;\n"
       "        for (uint i = 0u; i < NV; ++i) d += dot(wv[i], a[t * NV + i]);\n"
       "        acc[r * NT + t] += d;\n"
       "      }\n"
       "    }\n"
       "  }\n";
  if (plain)
    s += "  for (uint e = units * UNIT + tid; e < K; e += WG)\n"
         "    for (uint r = 0u; r < NR; ++r) {\n"
         "      const float wv = dq1(wb + min(r, last_r) * RB, e);\n"
         "      for (uint t = 0u; t < NT; ++t) acc[r * NT + t] += wv * A[ab + min(t0 + t, last_t) * K + e];\n"
         "    }\n";
  s += reduce_many(f, "NR * NT");
  s += "}\n";
  k.glsl = std::move(s);
  return k;
}

KernelSource gemm_kernel(DType w, bool bias, bool residual, const GemmTiles& t, const ShaderFeatures& f) {
  if (t.bk % 32 || t.bm % t.tm || t.bn % t.tn) fail("spirv: bad GEMM tiles (bk must be a multiple of 32)");
  KernelSource k;
  k.name = variant_name(fmt::format("gemm_{}{}{}", fname(w), bias ? "_bias" : "", residual ? "_res" : ""), f);
  k.spec = {t.wg(), t.bm, t.bn, t.bk, t.tm, t.tn};
  k.shared_bytes = (t.bk * (t.bm + 1) + t.bk * (t.bn + 1)) * 4;
  std::string s = prelude(f, t.wg());
  s += "layout(constant_id = 1) const uint BM = 64u;\n"
       "layout(constant_id = 2) const uint BN = 32u;\n"
       "layout(constant_id = 3) const uint BK = 32u;\n"
       "layout(constant_id = 4) const uint TM = 4u;\n"
       "layout(constant_id = 5) const uint TN = 4u;\n";
  s += weight_binding(0, f) + matmul_bindings(bias, residual, k.n_bindings);
  s += format_decoder_glsl(w);
  s += kActivationLoads;
  s += "shared float Ws[BK * (BM + 1u)];\nshared float As[BK * (BN + 1u)];\n";
  s += "void main() {\n"
       "  const uint tid = gl_LocalInvocationID.x;\n"
       "  const uint N = P(0), K = P(1), RB = P(2), row0 = P(3), nrows = P(4);\n"
       "  const uint M = P(5) + P(6) * pc.n_tokens;\n"
       "  const uint r0 = GX * BM;\n"
       "  if (r0 >= nrows) return;\n"
       "  const uint t0 = gl_WorkGroupID.y * BN;\n"
       "  a_vec = (pc.boff[1] & 15u) == 0u && (K & 3u) == 0u;\n"
       "  const uint wb = pc.boff[0] + r0 * RB, ab = pc.boff[1] >> 2;\n"
       "  const uint MT = BM / TM, NTT = BN / TN, KU = BK / UNIT, NV = UNIT / 4u;\n"
       "  const uint tm = tid % MT, tn = tid / MT;\n"
       "  float acc[TM * TN];\n"
       "  for (uint i = 0u; i < TM * TN; ++i) acc[i] = 0.0;\n"
       "  for (uint k0 = 0u; k0 < K; k0 += BK) {\n"
       "    // weights: dequantized in the load stage, [k][m] in shared memory\n"
       "    for (uint u = tid; u < BM * KU; u += WG) {\n"
       "      const uint m = u / KU, kk = (u % KU) * UNIT, e = k0 + kk;\n"
       "      vec4 wv[NV];\n"
       "      for (uint i = 0u; i < NV; ++i) wv[i] = vec4(0.0);\n"
       "      if (r0 + m < nrows && e < K) {\n"
       "        const uint rb = wb + m * RB;\n"
       "        if (e + UNIT <= K) {\n"
       "          dqu(rb, e, wv);\n"
       "        } else {\n"
       "          for (uint i = 0u; i < UNIT; ++i) wv[i >> 2][i & 3u] = e + i < K ? dq1(rb, e + i) : 0.0;\n"
       "        }\n"
       "      }\n"
       "      const uint st = BM + 1u;\n"
       "      uint o = kk * st + m;\n"
       "      for (uint i = 0u; i < NV; ++i, o += 4u * st) {\n"
       "        Ws[o] = wv[i].x; Ws[o + st] = wv[i].y; Ws[o + 2u * st] = wv[i].z; Ws[o + 3u * st] = wv[i].w;\n"
       "      }\n"
       "    }\n"
       "    // activations: [k][t]\n"
       "    for (uint u = tid; u < BN * (BK / 4u); u += WG) {\n"
       "      const uint tt = u / (BK / 4u), kk = (u % (BK / 4u)) * 4u, o = kk * (BN + 1u) + tt;\n"
       "      vec4 av = vec4(0.0);\n"
       "      if (t0 + tt < M) {\n"
       "        const uint ai = ab + (t0 + tt) * K + k0 + kk;\n"
       "        if (k0 + kk + 4u <= K) av = ld_a4(ai);\n"
       "        else for (uint i = 0u; i < 4u; ++i) av[i] = k0 + kk + i < K ? A[ai + i] : 0.0;\n"
       "      }\n"
       "      As[o] = av.x; As[o + BN + 1u] = av.y; As[o + 2u * (BN + 1u)] = av.z; As[o + 3u * (BN + 1u)] = av.w;\n"
       "    }\n"
       "    barrier();\n"
       "    for (uint kk = 0u; kk < BK; ++kk) {\n"
       "      float wr[TM], ar[TN];\n"
       "      for (uint i = 0u; i < TM; ++i) wr[i] = Ws[kk * (BM + 1u) + tm + i * MT];\n"
       "      for (uint j = 0u; j < TN; ++j) ar[j] = As[kk * (BN + 1u) + tn + j * NTT];\n"
       "      for (uint i = 0u; i < TM; ++i)\n"
       "        for (uint j = 0u; j < TN; ++j) acc[i * TN + j] += wr[i] * ar[j];\n"
       "    }\n"
       "    barrier();\n"
       "  }\n"
       "  for (uint i = 0u; i < TM; ++i)\n"
       "    for (uint j = 0u; j < TN; ++j) {\n"
       "      const uint m = tm + i * MT, t = t0 + tn + j * NTT;\n"
       "      if (r0 + m >= nrows || t >= M) continue;\n"
       "      const uint col = row0 + r0 + m;\n"
       "      float v = acc[i * TN + j];\n" +
       store_value(bias, residual, bias ? 4 : 3) +
       "    }\n"
       "}\n";
  k.glsl = std::move(s);
  return k;
}

KernelSource naive_matmul_kernel(DType w, const ShaderFeatures& f) {
  KernelSource k;
  k.name = variant_name("naive_" + fname(w), f);
  k.spec = {64};
  std::string s = prelude(f, 64);
  s += weight_binding(0, f) + matmul_bindings(false, false, k.n_bindings);
  s += format_decoder_glsl(w);
  s += "void main() {\n"
       "  const uint N = P(0), K = P(1), RB = P(2), row0 = P(3), nrows = P(4);\n"
       "  const uint n = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;\n"
       "  if (n >= nrows) return;\n"
       "  const uint rb = pc.boff[0] + n * RB, ab = (pc.boff[1] >> 2) + t * K;\n"
       "  float s = 0.0;\n"
       "  uint e = 0u;\n"
       "  for (; e + 8u <= K; e += 8u) {\n"
       "    vec4 w0, w1;\n"
       "    dq8(rb, e, w0, w1);\n"
       "    s += dot(w0, vec4(A[ab + e], A[ab + e + 1u], A[ab + e + 2u], A[ab + e + 3u]));\n"
       "    s += dot(w1, vec4(A[ab + e + 4u], A[ab + e + 5u], A[ab + e + 6u], A[ab + e + 7u]));\n"
       "  }\n"
       "  for (; e < K; ++e) s += dq1(rb, e) * A[ab + e];\n"
       "  O[(pc.boff[2] >> 2) + t * N + row0 + n] = s;\n"
       "}\n";
  k.glsl = std::move(s);
  return k;
}

KernelSource get_rows_kernel(DType t, bool identity, uint32_t wg, const ShaderFeatures& f) {
  KernelSource k;
  k.name = variant_name(fmt::format("{}_{}", identity ? "dequant" : "get_rows", fname(t)), f);
  k.spec = {wg};
  std::string s = prelude(f, wg);
  s += weight_binding(0, f);
  const uint32_t out = identity ? 1 : 2;
  if (!identity) s += buffer(1, "IDS", "int", true);
  s += buffer(out, "O", "float", false);
  k.n_bindings = out + 1;
  s += format_decoder_glsl(t);
  s += fmt::format(
      "void main() {{\n"
      "  const uint D = P(0), RB = P(1), row0 = P(2), nrows = P(3);\n"
      "  const uint rows = P(4) + P(5) * pc.n_tokens;\n"
      "  const uint t = gl_WorkGroupID.y;\n"
      "  if (t >= rows) return;\n"
      "  const int id = {};\n"
      "  const uint rel = uint(id) - row0;\n"
      "  if (id < 0 || rel >= nrows) return;\n"
      "  const uint e = (GX * WG + gl_LocalInvocationID.x) * 8u;\n"
      "  if (e >= D) return;\n"
      "  const uint rb = pc.boff[0] + rel * RB, ob = (pc.boff[{}] >> 2) + t * D + e;\n"
      "  if (e + 8u <= D) {{\n"
      "    vec4 v0, v1;\n"
      "    dq8(rb, e, v0, v1);\n"
      "    O[ob] = v0.x; O[ob + 1u] = v0.y; O[ob + 2u] = v0.z; O[ob + 3u] = v0.w;\n"
      "    O[ob + 4u] = v1.x; O[ob + 5u] = v1.y; O[ob + 6u] = v1.z; O[ob + 7u] = v1.w;\n"
      "  }} else {{\n"
      "    for (uint i = 0u; e + i < D; ++i) O[ob + i] = dq1(rb, e + i);\n"
      "  }}\n"
      "}}\n",
      identity ? "int(t)" : "IDS[(pc.boff[1] >> 2) + t]", out);
  k.glsl = std::move(s);
  return k;
}

KernelSource eltwise_kernel(Eltwise op, uint32_t wg, const ShaderFeatures& f) {
  const char* names[] = {"add", "mul", "swiglu", "silu", "gelu"};
  const char* exprs[] = {"a + b", "a * b", "silu(a) * b", "silu(a)", "gelu(a)"};
  const bool binary = op == Eltwise::Add || op == Eltwise::Mul || op == Eltwise::Swiglu;
  KernelSource k;
  k.name = variant_name(names[int(op)], f);
  k.spec = {wg};
  std::string s = prelude(f, wg);
  s += buffer(0, "A", "float", true);
  if (binary) s += buffer(1, "B", "float", true);
  const uint32_t out = binary ? 2 : 1;
  s += buffer(out, "O", "float", false);
  k.n_bindings = out + 1;
  s += "float silu(float x) { return x / (1.0 + exp(-x)); }\n"
       "float gelu(float x) {\n"
       "  const float c = 0.7978845608028654;\n"
       "  return 0.5 * x * (1.0 + tanh(clamp(c * x * (1.0 + 0.044715 * x * x), -15.0, 15.0)));\n"
       "}\n";
  s += fmt::format(
      "void main() {{\n"
      "  const uint C = P(0), rows = P(1) + P(2) * pc.n_tokens;\n"
      "  const uint c = GX * WG + gl_LocalInvocationID.x, row = gl_WorkGroupID.y;\n"
      "  if (c >= C || row >= rows) return;\n"
      "  const uint i = row * C + c;\n"
      "  const float a = A[(pc.boff[0] >> 2) + i];\n"
      "  {}\n"
      "  O[(pc.boff[{}] >> 2) + i] = {};\n"
      "}}\n",
      binary ? "const float b = B[(pc.boff[1] >> 2) + i % P(3)];" : "", out, exprs[int(op)]);
  k.glsl = std::move(s);
  return k;
}

KernelSource norm_kernel(bool layer, bool scale, bool bias, uint32_t wg, const ShaderFeatures& f) {
  if (!pow2(wg)) fail("spirv: norm workgroup size {} is not a power of two", wg);
  KernelSource k;
  k.name = variant_name(fmt::format("{}{}{}", layer ? "layer_norm" : "rms_norm", scale ? "_scale" : "", bias ? "_bias" : ""), f);
  k.spec = {wg};
  k.shared_bytes = wg * 4;
  std::string s = prelude(f, wg);
  uint32_t n = 0;
  s += buffer(n++, "X", "float", true);
  uint32_t sb = 0, bb = 0;
  if (scale) s += buffer(sb = n++, "S", "float", true);
  if (bias) s += buffer(bb = n++, "BI", "float", true);
  const uint32_t out = n++;
  s += buffer(out, "O", "float", false);
  k.n_bindings = n;
  s += reductions(f);
  std::string post;
  if (scale) post += fmt::format("    y *= S[(pc.boff[{}] >> 2) + c];\n", sb);
  if (bias) post += fmt::format("    y += BI[(pc.boff[{}] >> 2) + c];\n", bb);
  s += "void main() {\n"
       "  const uint tid = gl_LocalInvocationID.x;\n"
       "  const uint C = P(0), rows = P(1) + P(2) * pc.n_tokens;\n"
       "  const float eps = PF(3);\n"
       "  const uint row = GX;\n"
       "  if (row >= rows) return;\n"
       "  const uint xb = (pc.boff[0] >> 2) + row * C;\n" +
       fmt::format("  const uint ob = (pc.boff[{}] >> 2) + row * C;\n", out);
  if (layer) {
    s += "  float s = 0.0;\n"
         "  for (uint c = tid; c < C; c += WG) s += X[xb + c];\n"
         "  const float mean = wg_sum(s) / float(C);\n"
         "  float v = 0.0;\n"
         "  for (uint c = tid; c < C; c += WG) { const float d = X[xb + c] - mean; v += d * d; }\n"
         "  const float scale = 1.0 / sqrt(wg_sum(v) / float(C) + eps);\n"
         "  for (uint c = tid; c < C; c += WG) {\n"
         "    float y = (X[xb + c] - mean) * scale;\n" +
         post + "    O[ob + c] = y;\n  }\n";
  } else {
    s += "  float ss = 0.0;\n"
         "  for (uint c = tid; c < C; c += WG) { const float v = X[xb + c]; ss += v * v; }\n"
         "  const float scale = 1.0 / sqrt(wg_sum(ss) / float(C) + eps);\n"
         "  for (uint c = tid; c < C; c += WG) {\n"
         "    float y = X[xb + c] * scale;\n" +
         post + "    O[ob + c] = y;\n  }\n";
  }
  s += "}\n";
  k.glsl = std::move(s);
  return k;
}

KernelSource softmax_kernel(bool mask, uint32_t wg, const ShaderFeatures& f) {
  if (!pow2(wg)) fail("spirv: softmax workgroup size {} is not a power of two", wg);
  KernelSource k;
  k.name = variant_name(mask ? "softmax_mask" : "softmax", f);
  k.spec = {wg};
  k.shared_bytes = wg * 4;
  std::string s = prelude(f, wg);
  s += buffer(0, "X", "float", true);
  if (mask) s += buffer(1, "MK", "float", true);
  const uint32_t out = mask ? 2 : 1;
  s += buffer(out, "O", "float", false);
  k.n_bindings = out + 1;
  s += reductions(f);
  s += fmt::format(
      "void main() {{\n"
      "  const uint tid = gl_LocalInvocationID.x;\n"
      "  const uint C = P(0), rows = P(1) + P(2) * pc.n_tokens, mask_rows = P(3);\n"
      "  const float scale = PF(4);\n"
      "  const uint row = GX;\n"
      "  if (row >= rows) return;\n"
      "  const uint xb = (pc.boff[0] >> 2) + row * C, ob = (pc.boff[{0}] >> 2) + row * C;\n"
      "  float m = NEG_INF;\n"
      "  for (uint c = tid; c < C; c += WG) {{\n"
      "    const float v = X[xb + c] * scale{1};\n"
      "    O[ob + c] = v;\n"
      "    m = max(m, v);\n"
      "  }}\n"
      "  m = wg_max(m);\n"
      "  float s = 0.0;\n"
      "  for (uint c = tid; c < C; c += WG) {{\n"
      "    const float e = m == NEG_INF ? 0.0 : exp(O[ob + c] - m);\n"
      "    O[ob + c] = e;\n"
      "    s += e;\n"
      "  }}\n"
      "  s = wg_sum(s);\n"
      "  const float inv = s > 0.0 ? 1.0 / s : 0.0;\n"
      "  for (uint c = tid; c < C; c += WG) O[ob + c] *= inv;\n"
      "}}\n",
      out, mask ? " + MK[(pc.boff[1] >> 2) + (row % mask_rows) * C + c]" : "");
  k.glsl = std::move(s);
  return k;
}

KernelSource rope_kernel(uint32_t wg, const ShaderFeatures& f) {
  KernelSource k;
  k.name = variant_name("rope", f);
  k.spec = {wg};
  k.n_bindings = 3;
  std::string s = prelude(f, wg);
  s += buffer(0, "X", "float", true) + buffer(1, "POS", "int", true) + buffer(2, "O", "float", false);
  s += "// cos and sin after a two-constant reduction to [-pi, pi] (accurate for large angles)\n"
       "vec2 cos_sin(float a) {\n"
       "  const float k = floor(a * 0.15915494309189535 + 0.5);\n"
       "  float r = a - k * 6.28125;\n"
       "  r = r - k * 0.0019353071795864769;\n"
       "  return vec2(cos(r), sin(r));\n"
       "}\n"
       "void main() {\n"
       "  const uint tid = gl_LocalInvocationID.x;\n"
       "  const uint heads = P(0), hd = P(1), nd = P(2), neox = P(3);\n"
       "  const float theta_scale = PF(4), freq_scale = PF(5);\n"
       "  const uint h = GX, t = gl_WorkGroupID.y;\n"
       "  if (h >= heads) return;\n"
       "  const uint xb = (pc.boff[0] >> 2) + (t * heads + h) * hd, ob = (pc.boff[2] >> 2) + (t * heads + h) * hd;\n"
       "  const float p = float(POS[(pc.boff[1] >> 2) + t]);\n"
       "  for (uint i = tid; i < nd / 2u; i += WG) {\n"
       "    float theta = p;\n"
       "    for (uint q = 0u; q < i; ++q) theta *= theta_scale;  // ggml's repeated multiplication\n"
       "    const vec2 cs = cos_sin(freq_scale * theta);\n"
       "    const uint i0 = neox != 0u ? i : 2u * i, i1 = neox != 0u ? i + nd / 2u : 2u * i + 1u;\n"
       "    const float x0 = X[xb + i0], x1 = X[xb + i1];\n"
       "    O[ob + i0] = x0 * cs.x - x1 * cs.y;\n"
       "    O[ob + i1] = x0 * cs.y + x1 * cs.x;\n"
       "  }\n"
       "  for (uint j = nd + tid; j < hd; j += WG) O[ob + j] = X[xb + j];\n"
       "}\n";
  k.glsl = std::move(s);
  return k;
}

KernelSource kv_write_kernel(bool f16, uint32_t wg, const ShaderFeatures& f) {
  KernelSource k;
  k.name = variant_name(f16 ? "kv_write_f16" : "kv_write_f32", f);
  k.spec = {wg};
  k.n_bindings = 3;
  std::string s = prelude(f, wg);
  s += buffer(0, "X", "float", true) + buffer(1, "POS", "int", true);
  if (!f16)
    s += buffer(2, "C", "float", false);
  else if (f.storage16)
    s += buffer(2, "C16", "uint16_t", false);
  else
    s += buffer(2, "C32", "uint", false);
  s += "void main() {\n"
       "  const uint row = P(0), n_ctx = P(1);\n"
       "  const uint t = gl_WorkGroupID.y;\n"
       "  const int p = POS[(pc.boff[1] >> 2) + t];\n"
       "  if (p < 0 || uint(p) >= n_ctx) return;\n";
  if (!f16) {
    s += "  const uint j = GX * WG + gl_LocalInvocationID.x;\n"
         "  if (j >= row) return;\n"
         "  C[(pc.boff[2] >> 2) + uint(p) * row + j] = X[(pc.boff[0] >> 2) + t * row + j];\n";
  } else if (f.storage16) {
    s += "  const uint j = GX * WG + gl_LocalInvocationID.x;\n"
         "  if (j >= row) return;\n"
         "  C16[(pc.boff[2] >> 1) + uint(p) * row + j] = uint16_t(f2h(X[(pc.boff[0] >> 2) + t * row + j]));\n";
  } else {
    s += "  // two halves per 32-bit word (row is even)\n"
         "  const uint j = 2u * (GX * WG + gl_LocalInvocationID.x);\n"
         "  if (j >= row) return;\n"
         "  const uint xi = (pc.boff[0] >> 2) + t * row + j;\n"
         "  C32[((pc.boff[2] >> 1) + uint(p) * row + j) >> 1] = f2h(X[xi]) | (f2h(X[xi + 1u]) << 16);\n";
  }
  s += "}\n";
  k.glsl = std::move(s);
  return k;
}

KernelSource attention_kernel(bool f16, uint32_t head_dim, uint32_t n_ctx, uint32_t chunk, uint32_t wg,
                              const ShaderFeatures& f) {
  if (!pow2(wg)) fail("spirv: attention workgroup size {} is not a power of two", wg);
  const bool single = n_ctx <= chunk;
  const uint32_t ch = single ? n_ctx : chunk;
  KernelSource k;
  k.name = variant_name(fmt::format("attention_{}_d{}{}", f16 ? "f16" : "f32", head_dim, single ? "" : "_chunked"), f);
  k.spec = {wg, head_dim, ch};
  k.n_bindings = 5;
  k.shared_bytes = (head_dim + ch + 2 * wg) * 4;
  std::string s = prelude(f, wg);
  s += "layout(constant_id = 1) const uint D = 64u;\nlayout(constant_id = 2) const uint CH = 256u;\n";
  s += buffer(0, "Q", "float", true);
  for (int i = 0; i < 2; ++i) {
    const char* n = i == 0 ? "K" : "V";
    if (!f16)
      s += buffer(1 + i, std::string(n) + "f", "float", true);
    else if (f.storage16)
      s += buffer(1 + i, std::string(n) + "16", "uint16_t", true);
    else
      s += buffer(1 + i, std::string(n) + "32", "uint", true);
  }
  s += buffer(3, "POS", "int", true) + buffer(4, "O", "float", false);
  s += reductions(f);
  s += "shared float sq[D];\nshared float sc[CH];\nshared float part[WG];\n";
  for (int i = 0; i < 2; ++i) {
    const char* n = i == 0 ? "K" : "V";
    if (!f16)
      s += fmt::format("float load_{0}(uint i) {{ return {0}f[(pc.boff[{1}] >> 2) + i]; }}\n", n, 1 + i);
    else if (f.storage16)
      s += fmt::format("float load_{0}(uint i) {{ return h2f(uint({0}16[(pc.boff[{1}] >> 1) + i])); }}\n", n, 1 + i);
    else
      s += fmt::format(
          "float load_{0}(uint i) {{ const uint j = (pc.boff[{1}] >> 1) + i; return h2f(({0}32[j >> 1] >> ((j & 1u) << 4)) & 0xFFFFu); }}\n",
          n, 1 + i);
  }
  const char* rnd = f16 ? "round16" : "";
  s += "float score(uint c, uint kvh, uint Hkv) {\n"
       "  const uint kb = (c * Hkv + kvh) * D;\n"
       "  float s = 0.0;\n"
       "  for (uint i = 0u; i < D; ++i) s += sq[i] * load_K(kb + i);\n"
       "  return s;\n"
       "}\n";
  s += fmt::format(
      "void main() {{\n"
      "  const uint tid = gl_LocalInvocationID.x;\n"
      "  const uint H = P(0), Hkv = P(1), n_ctx = P(2);\n"
      "  const float scale = PF(3);\n"
      "  const uint h = GX, t = gl_WorkGroupID.y;\n"
      "  if (h >= H) return;\n"
      "  const int p = POS[(pc.boff[3] >> 2) + t];\n"
      "  const uint n_kv = uint(clamp(p, 0, int(n_ctx) - 1)) + 1u;\n"
      "  const uint kvh = h / (H / Hkv);\n"
      "  const uint qb = (pc.boff[0] >> 2) + (t * H + h) * D;\n"
      "  for (uint i = tid; i < D; i += WG) sq[i] = {0}(Q[qb + i]);\n"
      "  barrier();\n",
      rnd);
  if (single) {
    s += "  float ml = NEG_INF;\n"
         "  for (uint c = tid; c < n_kv; c += WG) { const float x = score(c, kvh, Hkv) * scale; sc[c] = x; ml = max(ml, x); }\n"
         "  const float m = wg_max(ml);\n"
         "  float sl = 0.0;\n"
         "  for (uint c = tid; c < n_kv; c += WG) { const float e = exp(sc[c] - m); sc[c] = e; sl += e; }\n"
         "  const float sum = wg_sum(sl);\n"
         "  const float inv = sum > 0.0 ? 1.0 / sum : 0.0;\n"
         "  barrier();\n";
  } else {
    s += "  float ml = NEG_INF, ll = 0.0;\n"
         "  for (uint c = tid; c < n_kv; c += WG) {\n"
         "    const float x = score(c, kvh, Hkv) * scale;\n"
         "    if (x > ml) { ll = ll * exp(ml - x) + 1.0; ml = x; } else { ll += exp(x - ml); }\n"
         "  }\n"
         "  const float m = wg_max(ml);\n"
         "  const float sum = wg_sum(ml == NEG_INF ? 0.0 : ll * exp(ml - m));\n"
         "  const float inv = sum > 0.0 ? 1.0 / sum : 0.0;\n";
  }
  s += "  const uint PARTS = D <= WG ? WG / D : 1u;\n"
       "  const uint ob = (pc.boff[4] >> 2) + (t * H + h) * D;\n"
       "  for (uint d0 = 0u; d0 < D; d0 += WG) {\n"
       "    const uint dl = D <= WG ? tid % D : tid, pi = D <= WG ? tid / D : 0u, dd = d0 + dl;\n"
       "    const bool live = dd < D && pi < PARTS;\n"
       "    float acc = 0.0;\n";
  if (single) {
    s += fmt::format(
        "    if (live)\n"
        "      for (uint c = pi; c < n_kv; c += PARTS) acc += {}(sc[c] * inv) * load_V((c * Hkv + kvh) * D + dd);\n",
        rnd);
  } else {
    s += fmt::format(
        "    for (uint c0 = 0u; c0 < n_kv; c0 += CH) {{\n"
        "      const uint ce = min(c0 + CH, n_kv);\n"
        "      barrier();\n"
        "      for (uint c = c0 + tid; c < ce; c += WG) sc[c - c0] = {}(exp(score(c, kvh, Hkv) * scale - m) * inv);\n"
        "      barrier();\n"
        "      if (live)\n"
        "        for (uint c = c0 + pi; c < ce; c += PARTS) acc += sc[c - c0] * load_V((c * Hkv + kvh) * D + dd);\n"
        "    }}\n",
        rnd);
  }
  s += "    part[tid] = acc;\n"
       "    barrier();\n"
       "    if (live && pi == 0u) {\n"
       "      float o = 0.0;\n"
       "      for (uint q = 0u; q < PARTS; ++q) o += part[q * D + dl];\n"
       "      O[ob + dd] = o;\n"
       "    }\n"
       "    barrier();\n"
       "  }\n"
       "}\n";
  k.glsl = std::move(s);
  return k;
}

KernelSource argmax_kernel(uint32_t wg, const ShaderFeatures& f) {
  if (!pow2(wg)) fail("spirv: argmax workgroup size {} is not a power of two", wg);
  KernelSource k;
  k.name = variant_name("argmax", f);
  k.spec = {wg};
  k.n_bindings = 2;
  k.shared_bytes = wg * 8;
  std::string s = prelude(f, wg);
  s += buffer(0, "X", "float", true) + buffer(1, "O", "int", false);
  s += "shared float bv_[WG];\nshared uint bi_[WG];\n"
       "void main() {\n"
       "  const uint tid = gl_LocalInvocationID.x, NONE = 0xFFFFFFFFu;\n"
       "  const uint C = P(0), rows = P(1) + P(2) * pc.n_tokens;\n"
       "  const uint row = GX;\n"
       "  if (row >= rows) return;\n"
       "  const uint xb = (pc.boff[0] >> 2) + row * C;\n"
       "  float bv = 0.0;\n"
       "  uint bi = NONE;\n"
       "  for (uint c = tid; c < C; c += WG) {\n"
       "    const float v = X[xb + c];\n"
       "    if (bi == NONE || v > bv) { bv = v; bi = c; }\n"
       "  }\n"
       "  bv_[tid] = bv;\n"
       "  bi_[tid] = bi;\n"
       "  barrier();\n"
       "  [[unroll]] for (uint s = WG / 2u; s > 0u; s >>= 1u) {\n"
       "    if (tid < s) {\n"
       "      const float ov = bv_[tid + s];\n"
       "      const uint oi = bi_[tid + s];\n"
       "      if (oi != NONE && (bi_[tid] == NONE || ov > bv_[tid] || (ov == bv_[tid] && oi < bi_[tid]))) {\n"
       "        bv_[tid] = ov;\n"
       "        bi_[tid] = oi;\n"
       "      }\n"
       "    }\n"
       "    barrier();\n"
       "  }\n"
       "  if (tid == 0u) O[(pc.boff[1] >> 2) + row] = int(bi_[0]);\n"
       "}\n";
  k.glsl = std::move(s);
  return k;
}

// ---- Quantized activations (q8_0 / q8_1) in a GPU-private layout, per tensor of up to `rows_max`
// rows: d[rows_max * nb] (f32 holding the f16-rounded scale), for q8_1 s[rows_max * nb] (f16-rounded
// d * sum), isum[rows_max * nb] (i32 level sums), then the int8 levels [rows_max * K] (16-byte
// aligned); nb = K / 32. Section offsets are parameters (Q8Layout in vulkan_compile.cpp).

KernelSource quantize_kernel(DType act, uint32_t wg, const ShaderFeatures& f) {
  if (act != DType::Q8_0 && act != DType::Q8_1) fail("spirv: no GPU quantizer for {}", dtype_name(act));
  KernelSource k;
  k.name = variant_name(std::string("quantize_") + dtype_name(act), f);
  k.spec = {wg};
  k.n_bindings = 2;
  std::string s = prelude(f, wg);
  s += buffer(0, "X", "float", true) + buffer(1, "Q32", "uint", false) + buffer(1, "QF", "float", false) +
       buffer(1, "QI", "int", false);
  s += fmt::format(
      "void main() {{\n"
      "  const uint K = P(0), rows = P(1) + P(2) * pc.n_tokens, nb = K / 32u;\n"
      "  const uint s_off = P(3), i_off = P(4), q_off = P(5);\n"
      "  const uint b = GX * WG + gl_LocalInvocationID.x, r = gl_WorkGroupID.y;\n"
      "  if (b >= nb || r >= rows) return;\n"
      "  const uint xb = (pc.boff[0] >> 2) + r * K + b * 32u, qb = pc.boff[1];\n"
      "  float amax = 0.0;\n"
      "  for (uint j = 0u; j < 32u; ++j) amax = max(amax, abs(X[xb + j]));\n"
      "  const float d = amax / 127.0;\n"
      "  const float id = amax != 0.0 ? 127.0 / amax : 0.0;  // as activation_quantize_row\n"
      "  int sum = 0;\n"
      "  for (uint w = 0u; w < 8u; ++w) {{\n"
      "    uint packed = 0u;\n"
      "    for (uint i = 0u; i < 4u; ++i) {{\n"
      "      const float v = X[xb + 4u * w + i] * id;\n"
      "      const int q = int(roundEven(v));\n"
      "      sum += q;\n"
      "      packed |= (uint(q) & 0xFFu) << (8u * i);\n"
      "    }}\n"
      "    Q32[((qb + q_off) >> 2) + (r * K + b * 32u) / 4u + w] = packed;\n"
      "  }}\n"
      "  const uint idx = r * nb + b;\n"
      "  QF[(qb >> 2) + idx] = round16(d);\n"
      "  {}\n"
      "  QI[((qb + i_off) >> 2) + idx] = sum;\n"
      "}}\n",
      act == DType::Q8_1 ? "QF[((qb + s_off) >> 2) + idx] = round16(float(sum) * d);" : "");
  k.glsl = std::move(s);
  return k;
}

namespace {

// Integer-dot decoders of the legacy formats: the 32 levels of block `bo` as 8 words of 4 bytes
// (unsigned levels for the nibble formats, signed for q8_0) in element order matching the q8
// activation words, the scale dx (and min mx), the level offset, and how ggml combines the block.
struct IntRow {
  DType type;
  int block_bytes;
  bool signed_levels;
  int offset;            // levels - offset are the values (subtracted via the activation sum)
  const char* decode;    // sets uint wq[8], float dx [, float mx]
  const char* combine;   // sumf += ... from sumi, dx, dy [, mx, sy]
};

const IntRow kIntFormats[] = {
    {DType::Q4_0, 18, false, 8,
     "  const float dx = h2f(ld16(bo));\n"
     "  for (uint i = 0u; i < 4u; ++i) { const uint w = ld32(bo + 2u + 4u * i); wq[i] = w & 0x0F0F0F0Fu; wq[i + 4u] = (w >> 4) & 0x0F0F0F0Fu; }\n",
     "float(sumi) * dx * dy"},
    {DType::Q4_1, 20, false, 0,
     "  const float dx = h2f(ld16(bo)), mx = h2f(ld16(bo + 2u));\n"
     "  for (uint i = 0u; i < 4u; ++i) { const uint w = ld32(bo + 4u + 4u * i); wq[i] = w & 0x0F0F0F0Fu; wq[i + 4u] = (w >> 4) & 0x0F0F0F0Fu; }\n",
     "(dx * dy) * float(sumi) + mx * sy"},
    {DType::Q5_0, 22, false, 16,
     "  const float dx = h2f(ld16(bo));\n"
     "  const uint qh = ld32(bo + 2u);\n"
     "  for (uint i = 0u; i < 4u; ++i) {\n"
     "    const uint w = ld32(bo + 6u + 4u * i);\n"
     "    wq[i] = (w & 0x0F0F0F0Fu) | spread4((qh >> (4u * i)) & 15u);\n"
     "    wq[i + 4u] = ((w >> 4) & 0x0F0F0F0Fu) | spread4((qh >> (16u + 4u * i)) & 15u);\n"
     "  }\n",
     "float(sumi) * (dx * dy)"},
    {DType::Q5_1, 24, false, 0,
     "  const float dx = h2f(ld16(bo)), mx = h2f(ld16(bo + 2u));\n"
     "  const uint qh = ld32(bo + 4u);\n"
     "  for (uint i = 0u; i < 4u; ++i) {\n"
     "    const uint w = ld32(bo + 8u + 4u * i);\n"
     "    wq[i] = (w & 0x0F0F0F0Fu) | spread4((qh >> (4u * i)) & 15u);\n"
     "    wq[i + 4u] = ((w >> 4) & 0x0F0F0F0Fu) | spread4((qh >> (16u + 4u * i)) & 15u);\n"
     "  }\n",
     "(dx * dy) * float(sumi) + mx * sy"},
    {DType::Q8_0, 34, true, 0,
     "  const float dx = h2f(ld16(bo));\n"
     "  for (uint i = 0u; i < 8u; ++i) wq[i] = ld32(bo + 2u + 4u * i);\n",
     "float(sumi) * (dx * dy)"},
};

const IntRow* find_int_format(DType t) {
  for (const IntRow& r : kIntFormats)
    if (r.type == t) return &r;
  return nullptr;
}

}  // namespace

bool q8_gemv_supported(DType w) { return find_int_format(w) != nullptr; }

KernelSource gemv_q8_kernel(DType w, bool bias, bool residual, const GemvTiles& t, const ShaderFeatures& f) {
  const IntRow* ir = find_int_format(w);
  if (!ir) fail("spirv: no integer-dot GEMV for {}", dtype_name(w));
  if (!pow2(t.wg)) fail("spirv: GEMV workgroup size {} is not a power of two", t.wg);
  const bool affine = ir->type == DType::Q4_1 || ir->type == DType::Q5_1;
  KernelSource k;
  k.name = variant_name(fmt::format("gemv_q8_{}{}{}", fname(w), bias ? "_bias" : "", residual ? "_res" : ""), f);
  k.spec = {t.wg, t.rows, t.tokens};
  k.shared_bytes = t.rows * t.tokens * t.wg * 4;
  std::string s = prelude(f, t.wg);
  s += "layout(constant_id = 1) const uint NR = 2u;\nlayout(constant_id = 2) const uint NT = 1u;\n";
  s += weight_binding(0, f);
  // Binding 1 holds the f32 activations for the batch (GEMM) kernel; this kernel reads the q8 copy.
  s += buffer(2, "O", "float", false);
  uint32_t n = 3;
  if (bias) s += buffer(n++, "BIAS", "float", true);
  if (residual) s += buffer(n++, "RES", "float", true);
  const uint32_t qbind = n++;
  k.n_bindings = n;
  s += buffer(qbind, "Q32", "uint", true) + buffer(qbind, "QF", "float", true) + buffer(qbind, "QI", "int", true);
  if (f.int_dot) {
    s += "spirv_instruction(extensions = [\"SPV_KHR_integer_dot_product\"], capabilities = [6019, 6018], id = 4450)\n"
         "int sdot_(uint a, uint b, spirv_literal int fmt);\n"
         "spirv_instruction(extensions = [\"SPV_KHR_integer_dot_product\"], capabilities = [6019, 6018], id = 4452)\n"
         "int sudot_(uint a, uint b, spirv_literal int fmt);\n"
         "int dot4(uint a, uint w) { return " + std::string(ir->signed_levels ? "sdot_" : "sudot_") + "(a, w, 0); }\n";
  } else {
    s += "int dot4(uint a, uint w) {\n"
         "  const ivec4 x = ivec4(bitfieldExtract(int(a), 0, 8), bitfieldExtract(int(a), 8, 8), bitfieldExtract(int(a), 16, 8), bitfieldExtract(int(a), 24, 8));\n";
    s += ir->signed_levels
             ? "  const ivec4 y = ivec4(bitfieldExtract(int(w), 0, 8), bitfieldExtract(int(w), 8, 8), bitfieldExtract(int(w), 16, 8), bitfieldExtract(int(w), 24, 8));\n"
             : "  const ivec4 y = ivec4(uvec4(w, w >> 8, w >> 16, w >> 24) & 0xFFu);\n";
    s += "  return x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;\n}\n";
  }
  s += "shared float gred[NR * NT * WG];\n";
  s += "uint N, row0, nrows, M, r0, t0;\n";
  s += "void store_out(uint i, float v) {\n"
       "  const uint r = i / NT, t = t0 + i % NT;\n"
       "  if (r0 + r < nrows && t < M) {\n"
       "    const uint col = row0 + r0 + r;\n" +
       store_value(bias, residual, bias ? 4 : 3) + "  }\n}\n";
  s += fmt::format(
      "void main() {{\n"
      "  const uint tid = gl_LocalInvocationID.x;\n"
      "  N = P(0); row0 = P(3); nrows = P(4);\n"
      "  const uint K = P(1), RB = P(2), nb = K / 32u;\n"
      "  M = P(5) + P(6) * pc.n_tokens;\n"
      "  const uint s_off = P(7), i_off = P(8), q_off = P(9);\n"
      "  r0 = GX * NR;\n"
      "  if (r0 >= nrows) return;\n"
      "  t0 = gl_WorkGroupID.y * NT;\n"
      "  const uint wb = pc.boff[0] + r0 * RB, qb = pc.boff[{0}];\n"
      "  const uint last_r = nrows - 1u - r0, last_t = M - 1u;\n"
      "  float acc[NR * NT];\n"
      "  for (uint i = 0u; i < NR * NT; ++i) acc[i] = 0.0;\n"
      "  for (uint b = tid; b < nb; b += WG) {{\n"
      "    uint aw[NT * 8u];\n"
      "    float ady[NT], asy[NT];\n"
      "    int asum[NT];\n"
      "    for (uint t = 0u; t < NT; ++t) {{\n"
      "      const uint row = min(t0 + t, last_t), idx = row * nb + b;\n"
      "      ady[t] = QF[(qb >> 2) + idx];\n"
      "      asy[t] = {1};\n"
      "      asum[t] = QI[((qb + i_off) >> 2) + idx];\n"
      "      const uint qw = ((qb + q_off) >> 2) + (row * K + b * 32u) / 4u;\n"
      "      for (uint i = 0u; i < 8u; ++i) aw[t * 8u + i] = Q32[qw + i];\n"
      "    }}\n"
      "    for (uint r = 0u; r < NR; ++r) {{\n"
      "      const uint bo = wb + min(r, last_r) * RB + b * {2}u;\n"
      "      uint wq[8];\n"
      "{3}"
      "      for (uint t = 0u; t < NT; ++t) {{\n"
      "        int sumi = 0;\n"
      "        for (uint i = 0u; i < 8u; ++i) sumi += dot4(aw[t * 8u + i], wq[i]);\n"
      "        sumi -= {4} * asum[t];\n"
      "        const float dy = ady[t], sy = asy[t];\n"
      "        acc[r * NT + t] += {5};\n"
      "      }}\n"
      "    }}\n"
      "  }}\n",
      qbind, affine ? "QF[((qb + s_off) >> 2) + idx]" : "0.0", ir->block_bytes,
      aligned_reads(ir->decode, ir->block_bytes), ir->offset, ir->combine);
  s += reduce_many(f, "NR * NT");
  s += "}\n";
  k.glsl = std::move(s);
  return k;
}

}  // namespace nibble::vk
