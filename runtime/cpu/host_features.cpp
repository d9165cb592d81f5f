#include "runtime/cpu/host_features.h"

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace nibble::rt {

namespace {

// Where each feature's bit is: cpuid leaf, subleaf, register (0 eax .. 3 edx), bit.
struct FeatureBit {
  const char* name;
  uint32_t leaf, subleaf;
  int reg, bit;
  int state;  // 0: none, 1: needs AVX state (ymm), 2: needs AVX-512 state (zmm, opmask)
};

constexpr FeatureBit kBits[] = {
    {"sse", 1, 0, 3, 25, 0},          {"sse2", 1, 0, 3, 26, 0},           {"sse3", 1, 0, 2, 0, 0},
    {"pclmul", 1, 0, 2, 1, 0},        {"ssse3", 1, 0, 2, 9, 0},           {"fma", 1, 0, 2, 12, 1},
    {"sse4.1", 1, 0, 2, 19, 0},       {"sse4.2", 1, 0, 2, 20, 0},         {"movbe", 1, 0, 2, 22, 0},
    {"popcnt", 1, 0, 2, 23, 0},       {"aes", 1, 0, 2, 25, 0},            {"avx", 1, 0, 2, 28, 1},
    {"f16c", 1, 0, 2, 29, 1},         {"bmi", 7, 0, 1, 3, 0},             {"avx2", 7, 0, 1, 5, 1},
    {"bmi2", 7, 0, 1, 8, 0},          {"avx512f", 7, 0, 1, 16, 2},        {"avx512dq", 7, 0, 1, 17, 2},
    {"adx", 7, 0, 1, 19, 0},          {"avx512ifma", 7, 0, 1, 21, 2},     {"avx512cd", 7, 0, 1, 28, 2},
    {"sha", 7, 0, 1, 29, 0},          {"avx512bw", 7, 0, 1, 30, 2},       {"avx512vl", 7, 0, 1, 31, 2},
    {"avx512vbmi", 7, 0, 2, 1, 2},    {"avx512vbmi2", 7, 0, 2, 6, 2},     {"gfni", 7, 0, 2, 8, 0},
    {"vaes", 7, 0, 2, 9, 1},          {"vpclmulqdq", 7, 0, 2, 10, 1},     {"avx512vnni", 7, 0, 2, 11, 2},
    {"avx512bitalg", 7, 0, 2, 12, 2}, {"avx512vpopcntdq", 7, 0, 2, 14, 2}, {"avx512fp16", 7, 0, 3, 23, 2},
    {"avxvnni", 7, 1, 0, 4, 1},       {"avx512bf16", 7, 1, 0, 5, 2},      {"lzcnt", 0x80000001, 0, 2, 5, 0},
    {"sse4a", 0x80000001, 0, 2, 6, 0}, {"fma4", 0x80000001, 0, 2, 16, 1}, {"xop", 0x80000001, 0, 2, 11, 1},
};

}  // namespace

const std::set<std::string>& checkable_cpu_features() {
  static const std::set<std::string> names = [] {
    std::set<std::string> s;
#if defined(__x86_64__) || defined(__i386__)
    for (const FeatureBit& f : kBits) s.insert(f.name);
#endif
    return s;
  }();
  return names;
}

std::set<std::string> host_cpu_features() {
  std::set<std::string> out;
#if defined(__x86_64__) || defined(__i386__)
  unsigned max_leaf = __get_cpuid_max(0, nullptr), max_ext = __get_cpuid_max(0x80000000, nullptr);
  unsigned a, b, c, d;
  bool avx_state = false, zmm_state = false;
  if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27))) {  // OSXSAVE: XGETBV is usable
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    avx_state = (lo & 0x6) == 0x6;             // xmm, ymm
    zmm_state = avx_state && (lo & 0xE0) == 0xE0;  // opmask, zmm hi256, hi16 zmm
  }
  for (const FeatureBit& f : kBits) {
    const unsigned top = f.leaf >= 0x80000000 ? max_ext : max_leaf;
    if (f.leaf > top || !__get_cpuid_count(f.leaf, f.subleaf, &a, &b, &c, &d)) continue;
    const unsigned regs[4] = {a, b, c, d};
    if (!(regs[f.reg] & (1u << f.bit))) continue;
    if ((f.state == 1 && !avx_state) || (f.state == 2 && !zmm_state)) continue;
    out.insert(f.name);
  }
#endif
  return out;
}

}  // namespace nibble::rt
