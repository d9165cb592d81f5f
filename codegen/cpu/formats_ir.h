// Internal to nibble_codegen_cpu: per-format block decoders emitting LLVM IR. A weight block
// becomes integer lanes (<V x i8> level chunks), per-group integer scales / mins and float block
// scales; every format differs from the others only here and in how its scales combine. The
// activation side (q8_0 / q8_1 / q8_K blocks) is prepared to match the chunk order.
#pragma once
#include <vector>

#include "codegen/cpu/ir_builder.h"

namespace nibble::cpu::detail {

enum class MinKind {
  None,    // d * sum(q * a) (levels minus a constant offset)
  Affine,  // q4_1 / q5_1: + m * s (s = d_a * sum(a) of the q8_1 block)
  KMins,   // q2_K / q4_K / q5_K: - dmin * d_a * sum_g min_g * bsum_g
};

// An integer-dot format: a weight format and its activation format.
struct IntFormat {
  DType w;
  int be, bpb;       // elements and bytes per weight block
  DType act;         // activation format
  int abpb, a_qs;    // activation block bytes, offset of its int8 levels
  int group;         // elements per integer-scaled group (0: none)
  int offset;        // value = level - offset (unsigned levels)
  bool sgn;          // levels are signed bytes (q8_0, q8_1, q8_K)
  MinKind mk;
};
const IntFormat* int_format(DType w);  // null for the float types

// A chunk of V decoded bytes is a concatenation of runs of consecutive elements.
struct Seg {
  int elem, len;
};
using ChunkSegs = std::vector<std::vector<Seg>>;
ChunkSegs chunk_segs(DType w, int V);
int elem_at(const std::vector<Seg>& segs, int pos);  // element index of byte `pos` of a chunk

// One decoded weight block.
struct WBlock {
  std::vector<llvm::Value*> q;     // per chunk: <V x i8> levels (unsigned, or signed when fmt.sgn)
  llvm::Value* d = nullptr;        // f32 block (super-block) scale
  llvm::Value* dmin = nullptr;     // f32: KMins dmin, Affine m
  llvm::Value* d_raw = nullptr;    // i16 f16 bits of d / dmin where stored as f16 (else null)
  llvm::Value* dmin_raw = nullptr;
  llvm::Value* gscale = nullptr;   // <G x i32> per-group integer scales
  llvm::Value* gmin = nullptr;     // <G x i32> per-group integer mins (KMins)
  // Filled by prepare_for_dot:
  std::vector<llvm::Value*> lscale;  // per chunk: lane scales (<L x i32> or <2L x i16>), or null
  llvm::Value* gmin16 = nullptr;     // <16 x i16> mins per 16 elements (KMins)
};

// One activation block, ready for dot products with WBlocks of the same chunk order.
struct ABlock {
  std::vector<llvm::Value*> a;     // per chunk <V x i8>
  std::vector<llvm::Value*> corr;  // per chunk: offset correction (ISA form), or null
  llvm::Value* d = nullptr;        // f32
  llvm::Value* s = nullptr;        // f32 (q8_1)
  llvm::Value* bsums = nullptr;    // <16 x i16> (q8_K)
};

enum class LaneScale { None, I32, I16 };

// The integer-dot machinery of one format at one vector width on the generator's ISA.
class IntDot {
 public:
  IntDot(IrGen& g, const IntFormat& f, int V);
  const IntFormat& f;
  int V, L;          // bytes per chunk, i32 lanes per chunk
  ChunkSegs segs;
  int eoff;          // effective level offset (signed levels become +128 on VNNI)
  LaneScale ls;

  WBlock decode(llvm::Value* blk);           // raw levels and scales
  WBlock decode_scales(llvm::Value* blk);    // scales only (q empty)
  llvm::Value* decode_levels(llvm::Value* blk, int c);  // <V x i8> levels of chunk c
  void prepare_for_dot(WBlock& w);           // ISA forms (lane scales, signed -> unsigned on VNNI)
  ABlock load_act(llvm::Value* ablk);        // activation block
  // 32-element formats at V = 64: two blocks per chunk (weight blocks at p0 and p1, activation blocks
  // consecutive at p). d, dmin (and the activation's d, s) become <2 x f32>. Which block each of a
  // block_dot's 16 lanes belongs to is pair_lane_blocks(): 0-7 / 8-15 in natural order, alternating
  // by 4 lanes for the nibble formats (nibble_pair), whose levels are stored half by half.
  WBlock decode_pair(llvm::Value* p0, llvm::Value* p1);
  ABlock load_act_pair(llvm::Value* p);
  bool nibble_pair() const;
  std::vector<int> pair_lane_blocks() const;
  // iacc (<L x i32>, may be null) + the integer dot of w and a over the block.
  llvm::Value* block_dot(const WBlock& w, const ABlock& a);
  // Lane vector for chunk c from a per-group vector: lane l covers `per_lane` bytes.
  llvm::Value* lane_vector(llvm::Value* gvec, int c, int lanes, int per_lane);

 private:
  IrGen& g;
  llvm::Value* dot_chunk(llvm::Value* acc, llvm::Value* q, llvm::Value* a, llvm::Value* corr, llvm::Value* lscale);
  llvm::Value* corr_of(llvm::Value* a);
};

// Decodes a block of any quantized format (including q8_1 / q8_K) into f32 values stored at
// `out` in element order, bit-exact with dtype_info(t).dequantize_row.
void emit_dequant_block(IrGen& g, DType t, llvm::Value* blk, llvm::Value* out);

}  // namespace nibble::cpu::detail
