// The JIT kernels: one parametric matmul skeleton (task rows -> row blocks -> token tiles -> row
// tiles -> k loop) with two tile shapes, the per-format block decoders (formats_ir.cpp), quantizers
// and row decoders.
//
// Matmul tiles:
//   - lanes = k ("tile"): RG rows x MT tokens; a vector holds consecutive levels of one row, so every
//     block ends in a horizontal sum. Every ISA; the gemv path, and gemm without AVX512-VNNI.
//   - lanes = rows ("panel16" + "gemm16"): the gemm path on AVX512-VNNI. 16 rows are decoded once
//     per chunk of up to 128 tokens into a panel in scratch, levels transposed so a vector holds 4
//     levels of 16 rows; each vector then feeds MT tokens whose activations are broadcast from
//     memory (vpdpbusd's m32bcst operand).
#include "codegen/cpu/kernel_gen.h"

#include <algorithm>

#include <fmt/format.h>
#include <llvm/IR/InlineAsm.h>

#include "codegen/cpu/formats_ir.h"
#include "codegen/cpu/ir_builder.h"
#include "support/error.h"

namespace nibble::cpu::detail {
using namespace llvm;

namespace {

int log2_of(int64_t r) {
  int l = 0;
  while ((int64_t(1) << l) < r) ++l;
  return l;
}

int interleave_of(const std::string& layout) {
  if (layout == "rows") return 1;
  if (layout.rfind("rows_x", 0) == 0) return std::atoi(layout.c_str() + 6);
  return 0;
}

bool is_float_weight(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

// ---- The 16-row gemm path's scratch (see emit_panel16 / emit_gemm16).
constexpr int64_t kTokenChunk = 128;  // tokens per chunk: each 16-row panel is decoded once per chunk
int panel_chunk_bytes(const IntFormat& f) { return f.be == 256 ? 64 : 32; }
bool needs_tab(const IntFormat& f) { return f.act != DType::Q8_K; }  // q8_K blocks carry d and sums inline
int64_t tab_entry(const IntFormat& f) { return needs_tab(f) ? (f.act == DType::Q8_1 ? 12 : 8) : 0; }

// A weight block's part of a 16-row panel: the byte offsets of its pieces (each piece one or more
// <16 x 32-bit> vectors, lane i for row i) and its size.
struct PanelLayout {
  // levels at 0: chunk c, dword d at (c * L + d) * 64, 4 levels of each of the 16 rows
  int64_t dv = 0;    // f32 block scales
  int64_t gs = 0;    // per group: i32 integer scales
  int64_t gm = 0;    // KMins, per 32 elements: i16 pairs of mins for vpdpwssd against q8_K's bsums
  int64_t dmin = 0;  // f32 KMins dmin / Affine m
  int64_t bytes = 0;
  int gm16 = 0;
};
PanelLayout panel_layout(const IntFormat& f) {
  PanelLayout l;
  int64_t o = 16 * int64_t(f.be);
  l.dv = o;
  o += 64;
  if (f.group) {
    l.gs = o;
    o += 64 * (f.be / f.group);
  }
  if (f.mk == MinKind::KMins) {
    l.gm16 = f.be / 32;
    l.gm = o;
    o += 64 * l.gm16;
  }
  if (f.mk != MinKind::None) {
    l.dmin = o;
    o += 64;
  }
  l.bytes = o;
  return l;
}
// Per thread: the panel (nb blocks), the chunk's activation blocks, its table; each 64-byte aligned.
// gemm_scratch_bytes and Kernels::gemm_scratch compute the same offsets, at compile and at run time.
uint64_t gemm_scratch_bytes(const IntFormat& f, int64_t nb) {
  auto up = [](int64_t x) { return (x + 63) & ~int64_t(63); };
  const int64_t act = up(nb * panel_layout(f).bytes);
  const int64_t tab = up(act + kTokenChunk * nb * f.abpb);
  return uint64_t(up(tab + kTokenChunk * nb * tab_entry(f)));
}

// Loads the NibbleKernelArgs fields.
struct KernelArgs {
  Value* bufs;
  Value* ints;
  Value* n_tokens;
  Value* tb;
  Value* te;
  Value* scratch;
};

class Kernels : public IrGen {
 public:
  using IrGen::IrGen;

  Function* kernel_function(const std::string& name, bool wide) {
    return new_function(name, void_ty, {ptr, i64, i64}, true, wide);
  }
  KernelArgs args_of(Function* fn) {
    KernelArgs a;
    Value* args = fn->getArg(0);
    a.bufs = load(ptr, args, 0);
    a.ints = load(ptr, args, 8);
    a.n_tokens = load(i64, args, 24);
    a.tb = fn->getArg(1);
    a.te = fn->getArg(2);
    a.scratch = load(ptr, args, 32);
    return a;
  }
  Value* buf(const KernelArgs& a, int i) { return load(ptr, a.bufs, 8 * i); }
  Value* int_arg(const KernelArgs& a, int i) { return load(i64, a.ints, 8 * i); }

  // ------------------------------------------------------------------------------------------
  // Matmul. A tile function computes RG weight rows x MT tokens:
  //   tile(w0, rstep, bstride, a0, astep, K, out0, ldo, unused, unused)
  // row q's block j is at w0 + q * rstep + j * bstride; token t's activations at a0 + t * astep;
  // out0 + (t * ldo + q) floats. The kernel applies bias / residual after the tile.
  struct MatmulPlan {
    QMatmulKernel k;
    const IntFormat* fmt = nullptr;  // null: float weights
    int V = 32;                      // bytes per chunk (integer path)
    int FL = 8;                      // floats per vector (float path)
    int R = 1;                       // layout interleave
    int RG = 4, MT = 1;              // tile shape
    int64_t bpb = 0, abpb = 0, be = 1;
    int vbits = 256;                 // the schedule's vector width, clamped to the target's
    bool pair = false;               // 32-element blocks two at a time in 512-bit vectors
    bool wide = false;
  };

  MatmulPlan plan_matmul(const QMatmulKernel& k) {
    MatmulPlan p;
    p.k = k;
    p.fmt = int_format(k.weight);
    p.R = interleave_of(k.layout);
    const int vbits = std::min(k.sched.vector_bits, T.vector_bits());
    p.vbits = vbits;
    p.MT = k.sched.gemm ? std::clamp(k.sched.m_tile, 1, 16) : 1;
    if (!use_tile16(p, isa, has512)) p.MT = std::min(p.MT, p.fmt ? 8 : 4);  // lanes=k tiles: RG x MT accumulators
    if (p.fmt) {
      p.V = (has512 && vbits >= 512 && isa != Isa::Generic) ? 64 : 32;
      p.pair = p.fmt->be == 32 && p.V == 64;
      p.be = p.fmt->be;
      p.bpb = p.fmt->bpb;
      p.abpb = p.fmt->abpb;
      p.wide = p.V == 64;
      const bool big_regs = has512;  // 32 vector registers
      p.RG = k.sched.gemm ? (big_regs ? 4 : 2) : 4;
      if (k.sched.gemm && p.MT > 4) p.RG = 2;
    } else {
      p.FL = std::max(4, vbits / 32);
      p.be = 1;
      p.bpb = dtype_info(k.weight).bytes_per_block;
      p.abpb = dtype_info(k.act).bytes_per_block;  // f32, or f16 / bf16 rounded as ggml rounds them
      p.wide = p.FL == 16;
      p.RG = p.MT > 4 ? 2 : 4;  // RG x MT accumulators
    }
    if (p.R > 1) p.RG = std::min(p.RG, p.R);
    return p;
  }

  // Accumulators of one (row, token) pair.
  struct Acc {
    AllocaInst* f = nullptr;  // <L x f32> (integer path) or <FL x f32> (float path)
    AllocaInst* k = nullptr;  // <8 x f32> k-quant mins
    AllocaInst* m = nullptr;  // f32: affine mins (integer path) / scalar tail (float path)
  };

  // Tiles depend on the format, vector width, tile shape and unroll only (not on the layout,
  // rows_per_task or epilogue), so kernels of one module share them.
  Function* emit_tile(const MatmulPlan& p, int RG, int MT) {
    const std::string name = fmt::format("nibble.tile.{}.{}.v{}.{}x{}.u{}", dtype_name(p.k.weight), dtype_name(p.k.act),
                                         p.fmt ? p.V : p.FL * 4, RG, MT, std::clamp(p.k.sched.k_unroll, 1, 8));
    if (Function* existing = M.getFunction(name)) return existing;
    Function* fn = new_function(name, void_ty, {ptr, i64, i64, ptr, i64, i64, ptr, i64, ptr, ptr}, false, p.wide);
    begin(fn);
    Value* w0 = fn->getArg(0);
    Value* rstep = fn->getArg(1);
    Value* bstride = fn->getArg(2);
    Value* a0 = fn->getArg(3);
    Value* astep = fn->getArg(4);
    Value* K = fn->getArg(5);
    Value* out0 = fn->getArg(6);
    Value* ldo = fn->getArg(7);

    std::vector<Value*> wrow(static_cast<size_t>(RG)), arow(static_cast<size_t>(MT));
    for (int q = 0; q < RG; ++q) wrow[size_t(q)] = gep(w0, B.CreateMul(rstep, ci64(q)));
    for (int t = 0; t < MT; ++t) arow[size_t(t)] = gep(a0, B.CreateMul(astep, ci64(t)));

    std::vector<std::vector<Acc>> acc(static_cast<size_t>(RG), std::vector<Acc>(static_cast<size_t>(MT)));
    std::vector<std::vector<Value*>> results(static_cast<size_t>(RG), std::vector<Value*>(static_cast<size_t>(MT)));
    if (p.fmt) {
      // One block per step (k-quants at V; 32-element blocks at 32 bytes), or two 32-element
      // blocks per step at 64 bytes (pair) with a one-block step for an odd block count.
      IntDot dot(*this, *p.fmt, p.pair ? 32 : p.V);
      const unsigned L = unsigned(dot.L);
      std::vector<std::vector<AllocaInst*>> f2(static_cast<size_t>(RG)), m2(static_cast<size_t>(RG));
      for (int q = 0; q < RG; ++q)
        for (int t = 0; t < MT; ++t) {
          Acc& a = acc[size_t(q)][size_t(t)];
          a.f = var(vt(f32, L), zero(vt(f32, L)), "facc");
          if (p.fmt->mk == MinKind::KMins) a.k = var(vt(f32, 8), zero(vt(f32, 8)), "kacc");
          if (p.fmt->mk == MinKind::Affine) a.m = var(f32, cf32(0), "macc");
          if (p.pair) {
            f2[size_t(q)].push_back(var(vt(f32, 16), zero(vt(f32, 16)), "facc2"));
            if (p.fmt->mk == MinKind::Affine) m2[size_t(q)].push_back(var(vt(f32, 2), zero(vt(f32, 2)), "macc2"));
          }
        }
      Value* nb = B.CreateSDiv(K, ci64(p.be));
      // Software prefetch of the weight stream, about 2 KiB ahead per row (the hardware prefetcher
      // alone leaves a single thread short of DRAM bandwidth).
      const int64_t pf_blocks = std::max<int64_t>(2, kPrefetchBytes / p.bpb);
      auto prefetch_rows = [&](Value* j, int blocks) {
        for (int q = 0; q < RG; ++q) {
          Value* ahead = gep(wrow[size_t(q)], B.CreateMul(B.CreateAdd(j, ci64(pf_blocks)), bstride));
          for (int64_t l = 0; l < (blocks * p.bpb + 63) / 64; ++l) prefetch(gep(ahead, 64 * l));
        }
      };
      auto body = [&](Value* j) {
        prefetch_rows(j, 1);
        std::vector<ABlock> ab;
        for (int t = 0; t < MT; ++t) ab.push_back(dot.load_act(gep(arow[size_t(t)], B.CreateMul(j, ci64(p.abpb)))));
        for (int q = 0; q < RG; ++q) {
          WBlock wb = dot.decode(gep(wrow[size_t(q)], B.CreateMul(j, bstride)));
          dot.prepare_for_dot(wb);
          for (int t = 0; t < MT; ++t) {
            const ABlock& a = ab[size_t(t)];
            Acc& c = acc[size_t(q)][size_t(t)];
            Value* iacc = dot.block_dot(wb, a);
            Value* s = B.CreateFMul(wb.d, a.d);
            set(c.f, fmuladd(B.CreateSIToFP(iacc, vt(f32, L)), bcast(s, L), get(c.f)));
            if (c.k) {
              Value* imin = madd16(wb.gmin16, a.bsums);
              set(c.k, fmuladd(B.CreateSIToFP(imin, vt(f32, 8)), bcast(B.CreateFMul(wb.dmin, a.d), 8), get(c.k)));
            }
            if (c.m) set(c.m, fmuladd(wb.dmin, a.s, get(c.m)));
          }
        }
      };
      if (p.pair) {
        IntDot dot2(*this, *p.fmt, 64);
        auto body2 = [&](Value* jp) {
          Value* j = B.CreateMul(jp, ci64(2));
          prefetch_rows(j, 2);
          std::vector<ABlock> ab;
          for (int t = 0; t < MT; ++t)
            ab.push_back(dot2.load_act_pair(gep(arow[size_t(t)], B.CreateMul(j, ci64(p.abpb)))));
          for (int q = 0; q < RG; ++q) {
            Value* p0 = gep(wrow[size_t(q)], B.CreateMul(j, bstride));
            WBlock wb = dot2.decode_pair(p0, gep(p0, bstride));
            dot2.prepare_for_dot(wb);
            for (int t = 0; t < MT; ++t) {
              const ABlock& a = ab[size_t(t)];
              Value* iacc = dot2.block_dot(wb, a);
              Value* s = shuffle(B.CreateFMul(wb.d, a.d), dot2.pair_lane_blocks());
              AllocaInst* fa = f2[size_t(q)][size_t(t)];
              set(fa, fmuladd(B.CreateSIToFP(iacc, vt(f32, 16)), s, get(fa)));
              if (!m2[size_t(q)].empty()) {
                AllocaInst* ma = m2[size_t(q)][size_t(t)];
                set(ma, fmuladd(wb.dmin, a.s, get(ma)));
              }
            }
          }
        };
        k_loop(B.CreateSDiv(nb, ci64(2)), p.k.sched.k_unroll, body2);
        if_then(B.CreateICmpNE(B.CreateSRem(nb, ci64(2)), ci64(0)), [&] { body(B.CreateSub(nb, ci64(1))); });
      } else {
        k_loop(nb, p.k.sched.k_unroll, body);
      }
      for (int q = 0; q < RG; ++q)
        for (int t = 0; t < MT; ++t) {
          Acc& c = acc[size_t(q)][size_t(t)];
          Value* v = hadd_f(get(c.f));
          if (p.pair) v = B.CreateFAdd(v, hadd_f(get(f2[size_t(q)][size_t(t)])));
          if (c.k) v = B.CreateFSub(v, hadd_f(get(c.k)));
          if (c.m) v = B.CreateFAdd(v, get(c.m));
          if (p.pair && !m2[size_t(q)].empty()) v = B.CreateFAdd(v, hadd_f(get(m2[size_t(q)][size_t(t)])));
          results[size_t(q)][size_t(t)] = v;
        }
    } else {
      const unsigned FL = unsigned(p.FL);
      const DType wt = p.k.weight;
      const int es = int(p.bpb);
      const DType at = p.k.act;
      const int as = int(p.abpb);
      auto load_float = [&](DType t, Value* ptr_, unsigned n) -> Value* {
        if (t == DType::F32) return load(n == 1 ? f32 : (Type*)vt(f32, n), ptr_);
        Value* h = load(n == 1 ? i16 : (Type*)vt(i16, n), ptr_);
        return t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
      };
      auto load_w = [&](Value* ptr_, unsigned n) { return load_float(wt, ptr_, n); };
      auto load_a = [&](Value* ptr_, unsigned n) { return load_float(at, ptr_, n); };
      for (auto& row : acc)
        for (Acc& a : row) {
          a.f = var(vt(f32, FL), zero(vt(f32, FL)), "facc");
          a.m = var(f32, cf32(0), "sacc");
        }
      Value* nv = B.CreateSDiv(K, ci64(FL));
      k_loop(nv, p.k.sched.k_unroll, [&](Value* j) {
        for (int q = 0; q < RG; ++q)
          prefetch(gep(wrow[size_t(q)], B.CreateAdd(B.CreateMul(j, ci64(es * FL)), ci64(kPrefetchBytes))));
        std::vector<Value*> av(static_cast<size_t>(MT));
        for (int t = 0; t < MT; ++t) av[size_t(t)] = load_a(gep(arow[size_t(t)], B.CreateMul(j, ci64(as * FL))), FL);
        for (int q = 0; q < RG; ++q) {
          Value* wv = load_w(gep(wrow[size_t(q)], B.CreateMul(j, ci64(es * FL))), FL);
          for (int t = 0; t < MT; ++t) {
            Acc& c = acc[size_t(q)][size_t(t)];
            set(c.f, fmuladd(wv, av[size_t(t)], get(c.f)));
          }
        }
      });
      for_range(B.CreateMul(nv, ci64(FL)), K, ci64(1), [&](Value* e) {
        std::vector<Value*> av(static_cast<size_t>(MT));
        for (int t = 0; t < MT; ++t) av[size_t(t)] = load_a(gep(arow[size_t(t)], B.CreateMul(e, ci64(as))), 1);
        for (int q = 0; q < RG; ++q) {
          Value* wv = load_w(gep(wrow[size_t(q)], B.CreateMul(e, ci64(es))), 1);
          for (int t = 0; t < MT; ++t) {
            Acc& c = acc[size_t(q)][size_t(t)];
            set(c.m, fmuladd(wv, av[size_t(t)], get(c.m)));
          }
        }
      });
      for (int q = 0; q < RG; ++q)
        for (int t = 0; t < MT; ++t) {
          Acc& c = acc[size_t(q)][size_t(t)];
          results[size_t(q)][size_t(t)] = B.CreateFAdd(hadd_f(get(c.f)), get(c.m));
        }
    }
    for (int t = 0; t < MT; ++t)
      for (int q = 0; q < RG; ++q) {
        Value* idx = B.CreateAdd(B.CreateMul(ldo, ci64(t)), ci64(q));
        store(results[size_t(q)][size_t(t)], gep(out0, B.CreateMul(idx, ci64(4))));
      }
    B.CreateRetVoid();
    return fn;
  }

  static constexpr int64_t kPrefetchBytes = 2048;  // distance of the software prefetch in a weight row
  static constexpr int64_t kRowBlockBytes = 256 << 10;  // weights all tokens use before the next ones
  void prefetch(Value* p) { B.CreateIntrinsic(Intrinsic::prefetch, {ptr}, {p, B.getInt32(0), B.getInt32(3), B.getInt32(1)}); }

  // for j in [0, n): body(j), unrolled by u with a remainder loop.
  void k_loop(Value* n, int u, const std::function<void(Value*)>& body) {
    u = std::clamp(u, 1, 8);
    if (u == 1) {
      for_range(ci64(0), n, ci64(1), body);
      return;
    }
    Value* nmain = B.CreateSub(n, B.CreateSRem(n, ci64(u)));
    for_range(ci64(0), nmain, ci64(u), [&](Value* j) {
      for (int k = 0; k < u; ++k) body(B.CreateAdd(j, ci64(k)));
    });
    for_range(nmain, n, ci64(1), body);
  }

  // ------------------------------------------------------------------------------------------
  // GEMM with lanes = rows (AVX512-VNNI), in two steps per 16 weight rows and chunk of tokens:
  //   panel16 decodes the 16 rows' blocks once into a panel in the thread's scratch (PanelLayout):
  //   level dwords transposed so one vector holds the same 4 levels of 16 rows, and the scales as
  //   vectors of 16 rows;
  //   gemm16 computes MT tokens x 16 rows from the panel: every level vector feeds MT vpdpbusd whose
  //   activations are broadcast 4 bytes at a time from memory. Block (and group) sums stay exact.
  // The decode and transpose are paid once per chunk of up to kTokenChunk tokens, not once per tile.
  // The chunk's activation blocks are repacked [block][token] (with, for q8_0 / q8_1, a table of
  // per-block offset corrections and scales), so a tile addresses all its tokens from one pointer.
  static bool use_tile16(const MatmulPlan& p, Isa isa, bool has512) {
    return p.fmt && p.k.sched.gemm && isa == Isa::Vnni && has512 && p.vbits >= 512;
  }
  struct GemmScratch {
    Value *act, *tab;  // byte offsets in scratch (the panel is at 0)
  };
  GemmScratch gemm_scratch(const IntFormat& f, Value* nb) {
    auto up = [&](Value* x) { return B.CreateAnd(B.CreateAdd(x, ci64(63)), ci64(~int64_t(63))); };
    Value* act = up(B.CreateMul(nb, ci64(panel_layout(f).bytes)));
    Value* tab = up(B.CreateAdd(act, B.CreateMul(nb, ci64(kTokenChunk * f.abpb))));
    return {act, tab};
  }

  //   panel16(w0, gstep, rstep, bstride, log2(R), nb, P): row i's block j is at
  //   w0 + (i / R) gstep + (i % R) rstep + j bstride (R: the layout's interleave); its panel at P + j PB.
  Function* emit_panel16(const MatmulPlan& p) {
    const std::string name = fmt::format("nibble.panel16.{}", dtype_name(p.k.weight));
    if (Function* existing = M.getFunction(name)) return existing;
    Function* fn = new_function(name, void_ty, {ptr, i64, i64, i64, i64, i64, ptr}, false, true);
    begin(fn);
    Value* w0 = fn->getArg(0);
    Value* gstep = fn->getArg(1);
    Value* rstep = fn->getArg(2);
    Value* bstride = fn->getArg(3);
    Value* log2r = fn->getArg(4);
    Value* nb = fn->getArg(5);
    Value* P = fn->getArg(6);
    const IntFormat& f = *p.fmt;
    const PanelLayout pl = panel_layout(f);
    IntDot dot(*this, f, panel_chunk_bytes(f));
    const int L = dot.L;

    std::vector<Value*> rowbase(16);
    Value* rmask = B.CreateSub(B.CreateShl(ci64(1), log2r), ci64(1));
    for (int i = 0; i < 16; ++i)
      rowbase[size_t(i)] = gep(w0, B.CreateAdd(B.CreateMul(gstep, B.CreateLShr(ci64(i), log2r)),
                                                B.CreateMul(rstep, B.CreateAnd(ci64(i), rmask))));
    k_loop(nb, 1, [&](Value* j) {
      Value* pj = gep(P, B.CreateMul(j, ci64(pl.bytes)));
      std::vector<Value*> rowp;
      std::vector<WBlock> wb;
      for (int i = 0; i < 16; ++i) {
        rowp.push_back(gep(rowbase[size_t(i)], B.CreateMul(j, bstride)));
        wb.push_back(dot.decode_scales(rowp.back()));
      }
      // Block scales of the 16 rows: f16 bits gathered, converted at once.
      auto f16_rows = [&](Value* WBlock::*raw, Value* WBlock::*val) {
        std::vector<Value*> v;
        for (auto& b : wb) v.push_back(wb[0].*raw ? b.*raw : b.*val);
        return wb[0].*raw ? f16_to_f32(vec_of(v)) : vec_of(v);
      };
      auto store_rows = [&](Value* WBlock::*field, int64_t off) {
        std::vector<Value*> g;
        for (auto& b : wb) g.push_back(b.*field);
        std::vector<Value*> T = transpose16(g);  // T[g]: group g of the 16 rows
        for (size_t k = 0; k < T.size(); ++k) store(T[k], pj, off + 64 * int64_t(k));
        return T;
      };
      store(f16_rows(&WBlock::d_raw, &WBlock::d), pj, pl.dv);
      if (f.group) store_rows(&WBlock::gscale, pl.gs);
      if (f.mk == MinKind::KMins) {
        std::vector<Value*> g;
        for (auto& b : wb) g.push_back(b.gmin);
        std::vector<Value*> Gm = transpose16(g);  // per group, mins of the 16 rows (< 64)
        // i16 pairs for vpdpwssd against q8_K's bsums (per 16 elements): groups of 32 use their min
        // for both halves, groups of 16 pair up.
        for (int k = 0; k < pl.gm16; ++k) {
          Value* lo = f.group == 32 ? Gm[size_t(k)] : Gm[size_t(2 * k)];
          Value* hi = f.group == 32 ? Gm[size_t(k)] : Gm[size_t(2 * k + 1)];
          store(B.CreateOr(lo, B.CreateShl(hi, splat(i32, 16, 16))), pj, pl.gm + 64 * k);
        }
      }
      if (f.mk != MinKind::None) store(f16_rows(&WBlock::dmin_raw, &WBlock::dmin), pj, pl.dmin);
      for (size_t c = 0; c < dot.segs.size(); ++c) {
        std::vector<Value*> rows_c;
        for (int i = 0; i < 16; ++i) {
          Value* q = dot.decode_levels(rowp[size_t(i)], int(c));
          if (f.sgn) q = B.CreateXor(q, splat(i8, unsigned(dot.V), 0x80));
          rows_c.push_back(B.CreateBitCast(q, vt(i32, unsigned(L))));
        }
        std::vector<Value*> T = transpose16(rows_c);  // T[d]: dword d of chunk c, 16 rows
        for (int d = 0; d < L; ++d) store(T[size_t(d)], pj, (int64_t(c) * L + d) * 64);
      }
    });
    B.CreateRetVoid();
    return fn;
  }

  //   gemm16(P, nb, A, astride, tab, tstride, out0, ldo): tokens t < MT whose activation block j is
  //   at A + j astride + t abpb (table entry at tab + j tstride + t entry, for q8_0 / q8_1:
  //   i32 offset correction, f32 d, [f32 s]); out0 + t ldo floats receives the 16 rows.
  Function* emit_gemm16(const MatmulPlan& p, int MT) {
    const std::string name = fmt::format("nibble.gemm16.{}.m{}", dtype_name(p.k.weight), MT);
    if (Function* existing = M.getFunction(name)) return existing;
    Function* fn = new_function(name, void_ty, {ptr, i64, ptr, i64, ptr, i64, ptr, i64}, false, true);
    begin(fn);
    Value* P = fn->getArg(0);
    Value* nb = fn->getArg(1);
    Value* A = fn->getArg(2);
    Value* astride = fn->getArg(3);
    Value* tab = fn->getArg(4);
    Value* tstride = fn->getArg(5);
    Value* out0 = fn->getArg(6);
    Value* ldo = fn->getArg(7);
    const IntFormat& f = *p.fmt;
    const PanelLayout pl = panel_layout(f);
    IntDot dot(*this, f, panel_chunk_bytes(f));
    const int L = dot.L;
    const bool tabbed = needs_tab(f);
    const int64_t te = tab_entry(f);
    auto V16 = [&](Type* e) { return vt(e, 16); };
    std::vector<AllocaInst*> facc(static_cast<size_t>(MT));
    for (int t = 0; t < MT; ++t) facc[size_t(t)] = var(V16(f32), zero(V16(f32)), "facc");

    k_loop(nb, 1, [&](Value* j) {
      Value* pj = gep(P, B.CreateMul(j, ci64(pl.bytes)));
      Value* aj = gep(A, B.CreateMul(j, astride));
      Value* tj = tabbed ? gep(tab, B.CreateMul(j, tstride)) : nullptr;
      auto act_i32 = [&](int t, int64_t off) { return bcast(load(i32, aj, t * p.abpb + off), 16); };
      // Each level vector is loaded after a scheduling fence (an empty asm that clobbers memory), so
      // it feeds the MT tokens before the next one is loaded: left alone, the backend orders the dot
      // products token by token and spills every level vector of the block.
      auto level = [&](size_t c, int d) {
        B.CreateCall(InlineAsm::get(FunctionType::get(void_ty, false), "", "~{memory}", true), {});
        return load(V16(i32), pj, (int64_t(c) * L + d) * 64);
      };
      std::vector<Value*> iacc(static_cast<size_t>(MT), nullptr);
      for (size_t c = 0; c < dot.segs.size(); ++c) {
        if (!f.group) {
          for (int d = 0; d < L; ++d) {
            Value* T = level(c, d);
            const int64_t off = f.a_qs + elem_at(dot.segs[c], 4 * d);
            for (int t = 0; t < MT; ++t) {
              Value* acc = iacc[size_t(t)];
              if (!acc) acc = (dot.eoff && tabbed) ? bcast(load(i32, tj, t * te), 16) : zero(V16(i32));
              iacc[size_t(t)] = dpbusd(acc, T, act_i32(t, off));
            }
          }
          continue;
        }
        // Runs of dwords of one group: their sum is scaled by the group's integer scale.
        for (int da = 0; da < L;) {
          const int e0 = elem_at(dot.segs[c], 4 * da);
          const int g = e0 / f.group;
          int db = da;
          while (db < L && elem_at(dot.segs[c], 4 * db) / f.group == g) ++db;
          std::vector<Value*> acc(static_cast<size_t>(MT));
          for (int t = 0; t < MT; ++t) {
            acc[size_t(t)] = zero(V16(i32));
            if (dot.eoff) {  // -offset * sum(a) over the group, from q8_K's sums of 16
              Value* bs = B.CreateSExt(load(i16, aj, t * p.abpb + 4 + 256 + 2 * (e0 / 16)), i32);
              if (f.group == 32)
                bs = B.CreateAdd(bs, B.CreateSExt(load(i16, aj, t * p.abpb + 4 + 256 + 2 * (e0 / 16 + 1)), i32));
              acc[size_t(t)] = bcast(B.CreateMul(bs, ci32(-dot.eoff)), 16);
            }
          }
          for (int d = da; d < db; ++d) {
            Value* T = level(c, d);
            const int64_t off = f.a_qs + elem_at(dot.segs[c], 4 * d);
            for (int t = 0; t < MT; ++t) acc[size_t(t)] = dpbusd(acc[size_t(t)], T, act_i32(t, off));
          }
          Value* gs = load(V16(i32), pj, pl.gs + 64 * g);
          for (int t = 0; t < MT; ++t) {
            Value* sc = B.CreateMul(acc[size_t(t)], gs);
            // Pinned here (an empty asm that takes and returns it, ordered by the fences): else the
            // backend sinks the scaling to the block's end and spills every group's sums.
            iacc[size_t(t)] = pin(iacc[size_t(t)] ? B.CreateAdd(iacc[size_t(t)], sc) : sc);
          }
          da = db;
        }
      }
      Value* dv = load(V16(f32), pj, pl.dv);
      Value* dmin = f.mk != MinKind::None ? load(V16(f32), pj, pl.dmin) : nullptr;
      for (int t = 0; t < MT; ++t) {
        Value* ad = bcast(tabbed ? load(f32, tj, t * te + 4) : load(f32, aj, t * p.abpb), 16);
        Value* acc = fmuladd(B.CreateSIToFP(iacc[size_t(t)], V16(f32)), B.CreateFMul(dv, ad), get(facc[size_t(t)]));
        if (f.mk == MinKind::KMins) {
          Value* imin = zero(V16(i32));
          for (int k = 0; k < pl.gm16; ++k)
            imin = dpwssd(imin, load(V16(i32), pj, pl.gm + 64 * k), act_i32(t, 4 + 256 + 4 * int64_t(k)));
          acc = fmuladd(B.CreateSIToFP(imin, V16(f32)), B.CreateFNeg(B.CreateFMul(dmin, ad)), acc);
        }
        if (f.mk == MinKind::Affine) acc = fmuladd(dmin, bcast(load(f32, tj, t * te + 8), 16), acc);
        set(facc[size_t(t)], acc);
      }
    });
    for (int t = 0; t < MT; ++t) store(get(facc[size_t(t)]), gep(out0, B.CreateMul(B.CreateMul(ldo, ci64(t)), ci64(4))));
    B.CreateRetVoid();
    return fn;
  }

  Value* pin(Value* v) {
    auto* ty = FunctionType::get(v->getType(), {v->getType()}, false);
    return B.CreateCall(InlineAsm::get(ty, "", "=v,0", true), {v});
  }

  // Weight rows of one tile: row i's block j at w0 + (i >> log2r) gstep + (i & (2^log2r - 1)) rstep
  // + j bstride (lanes = k tiles, whose rows never cross a group: row q at w0 + q rstep).
  struct RowTile {
    Value *w0, *gstep, *rstep, *bstride;
    int log2r;
    Value* r;  // first row
  };

  void emit_matmul(const KernelSpec& spec) {
    const MatmulPlan p = plan_matmul(spec.mm);
    const std::string& sym = spec.symbol;
    const bool t16 = use_tile16(p, isa, has512);
    // Tiles: full (RG x MT), row tail (1 x MT), token tail (RG x 1), corner (1 x 1); the 16-row
    // path has its panel and gemm16 functions for the full tiles instead.
    Function* t_full = t16 ? nullptr : emit_tile(p, p.RG, p.MT);
    Function* t_row = emit_tile(p, 1, p.MT);
    Function* t_tok = t16 ? nullptr : emit_tile(p, p.RG, 1);
    Function* t_one = emit_tile(p, 1, 1);
    Function* panel = t16 ? emit_panel16(p) : nullptr;
    Function* g_mt = t16 ? emit_gemm16(p, p.MT) : nullptr;
    Function* g_1 = t16 ? emit_gemm16(p, 1) : nullptr;
    // The 16-row path's leftover tokens (prefill of a few tokens: up to MT - 1) take tiles of 4 first.
    Function* g_4 = t16 && p.MT > 4 ? emit_gemm16(p, 4) : nullptr;

    Function* fn = kernel_function(sym, p.wide || t16);
    begin(fn);
    KernelArgs ka = args_of(fn);
    Value* w = buf(ka, 0);
    Value* a = buf(ka, 1);
    Value* out = buf(ka, 2);
    int next = 3;
    Value* nullp = ConstantPointerNull::get(cast<PointerType>(ptr));
    Value* bias = spec.mm.bias ? buf(ka, next++) : nullp;
    Value* res = spec.mm.residual ? buf(ka, next++) : nullp;
    Value* N = int_arg(ka, 0);
    Value* K = int_arg(ka, 1);
    Value* M0 = int_arg(ka, 2);
    Value* M = B.CreateSelect(B.CreateICmpEQ(M0, ci64(0)), ka.n_tokens, M0);
    Value* nb = B.CreateSDiv(K, ci64(p.be));
    Value* wrow = B.CreateMul(nb, ci64(p.bpb));
    Value* arow = B.CreateMul(nb, ci64(p.abpb));  // float path: nb = K
    const int64_t RPT = std::max(1, spec.mm.sched.rows_per_task);
    Value* bpb = ci64(p.bpb);

    // Epilogue of a tile's outputs (rows [r, r + nr) of tokens [m0, m0 + mt)): (dot + bias), then
    // residual + that, as the unfused graph computes them.
    auto epilogue = [&](Value* m0, Value* r, int nr, int mt) {
      if (!spec.mm.bias && !spec.mm.residual) return;
      for (int t = 0; t < mt; ++t) {
        Value* o = B.CreateAdd(B.CreateMul(B.CreateAdd(m0, ci64(t)), N), r);
        Value* po = gep(out, B.CreateMul(o, ci64(4)));
        Type* ty = nr == 1 ? f32 : (Type*)vt(f32, unsigned(nr));
        Value* v = load(ty, po);
        if (spec.mm.bias) v = B.CreateFAdd(v, load(ty, gep(bias, B.CreateMul(r, ci64(4)))));
        if (spec.mm.residual) v = B.CreateFAdd(load(ty, gep(res, B.CreateMul(o, ci64(4)))), v);
        store(v, po);
      }
    };
    auto call_tile = [&](Function* tile, Value* w0, Value* rstep, Value* bstride, Value* m0, Value* r, int nr, int mt) {
      Value* a0 = gep(a, B.CreateMul(m0, arow));
      Value* out0 = gep(out, B.CreateMul(B.CreateAdd(B.CreateMul(m0, N), r), ci64(4)));
      B.CreateCall(tile, {w0, rstep, bstride, a0, arow, K, out0, N, nullp, nullp});
      epilogue(m0, r, nr, mt);
    };
    // Tokens [m0, m1) in tiles of sizes[0] while they fit, then sizes[1], ...: step(m, size). The
    // last size is 1.
    auto token_tiles = [&](Value* m0, Value* m1, const std::vector<int>& sizes,
                           const std::function<void(Value*, int)>& step) {
      AllocaInst* m = var(i64, m0, "m");
      for (int mt : sizes)
        while_loop([&] { return B.CreateICmpSLE(B.CreateAdd(get(m), ci64(mt)), m1); },
                   [&] {
                     step(get(m), mt);
                     set(m, B.CreateAdd(get(m), ci64(mt)));
                   });
    };
    const std::vector<int> tile_sizes = p.MT > 1 ? std::vector<int>{p.MT, 1} : std::vector<int>{1};

    // Rows [r0, r1): whole tiles of RG rows (16 on the 16-row path, which may span several groups of
    // an interleaved layout) where they fit, single rows elsewhere: row(w0, bstride, r).
    auto visit_rows = [&](Value* r0, Value* r1, int RG, const std::function<void(const RowTile&)>& tile,
                          const std::function<void(Value*, Value*, Value*)>& row) {
      AllocaInst* r = var(i64, r0, "r");
      if (p.R == 1) {
        while_loop([&] { return B.CreateICmpSLE(B.CreateAdd(get(r), ci64(RG)), r1); },
                   [&] {
                     Value* rv = get(r);
                     tile({gep(w, B.CreateMul(rv, wrow)), wrow, wrow, bpb, 0, rv});
                     set(r, B.CreateAdd(rv, ci64(RG)));
                   });
        while_loop([&] { return B.CreateICmpSLT(get(r), r1); },
                   [&] {
                     Value* rv = get(r);
                     row(gep(w, B.CreateMul(rv, wrow)), bpb, rv);
                     set(r, B.CreateAdd(rv, ci64(1)));
                   });
        return;
      }
      const int64_t R = p.R;
      const int64_t span = std::max<int64_t>(RG, R);  // RG divides R, or R divides RG (= 16)
      while_loop([&] { return B.CreateICmpSLT(get(r), r1); },
                 [&] {
                   Value* rv = get(r);
                   Value* gi = B.CreateSDiv(rv, ci64(R));
                   Value* i = B.CreateSub(rv, B.CreateMul(gi, ci64(R)));
                   Value* gbase = gep(w, B.CreateMul(B.CreateMul(gi, ci64(R)), wrow));
                   Value* full = B.CreateAnd(B.CreateICmpEQ(i, ci64(0)), B.CreateICmpSLE(B.CreateAdd(rv, ci64(span)), r1));
                   if_then(
                       full,
                       [&] {
                         for (int64_t pass = 0; pass < span / RG; ++pass)
                           tile({gep(gbase, pass * RG * p.bpb), B.CreateMul(wrow, ci64(R)), bpb, ci64(R * p.bpb), log2_of(R),
                                 B.CreateAdd(rv, ci64(pass * RG))});
                         set(r, B.CreateAdd(rv, ci64(span)));
                       },
                       [&] {
                         Value* rg = B.CreateSelect(B.CreateICmpSLT(B.CreateSub(N, B.CreateMul(gi, ci64(R))), ci64(R)),
                                                    B.CreateSub(N, B.CreateMul(gi, ci64(R))), ci64(R));
                         row(gep(gbase, B.CreateMul(i, bpb)), B.CreateMul(rg, bpb), rv);
                         set(r, B.CreateAdd(rv, ci64(1)));
                       });
                 });
    };

    Value* rt0 = B.CreateMul(ka.tb, ci64(RPT));
    Value* rt1 = B.CreateMul(ka.te, ci64(RPT));
    rt1 = B.CreateSelect(B.CreateICmpSLT(rt1, N), rt1, N);

    if (t16) {
      // Chunks of at most kTokenChunk tokens, of equal size; per chunk the activations are repacked
      // into scratch, then each 16-row tile of the task is decoded once and used by all of them.
      const IntFormat& f = *p.fmt;
      const GemmScratch gs = gemm_scratch(f, nb);
      const int64_t te = tab_entry(f);
      Value* P = ka.scratch;
      Value* AR = gep(ka.scratch, gs.act);
      Value* TB = needs_tab(f) ? gep(ka.scratch, gs.tab) : nullp;
      Value* nchunks = B.CreateUDiv(B.CreateAdd(M, ci64(kTokenChunk - 1)), ci64(kTokenChunk));
      nchunks = B.CreateSelect(B.CreateICmpEQ(nchunks, ci64(0)), ci64(1), nchunks);
      Value* tc = B.CreateUDiv(B.CreateAdd(M, B.CreateSub(nchunks, ci64(1))), nchunks);
      tc = B.CreateSelect(B.CreateICmpEQ(tc, ci64(0)), ci64(1), tc);
      const IntDot dot32(*this, f, 32);
      for_range(ci64(0), M, tc, [&](Value* c0) {
        Value* mc = B.CreateSub(M, c0);
        mc = B.CreateSelect(B.CreateICmpSLT(mc, tc), mc, tc);
        Value* astride = B.CreateMul(mc, ci64(p.abpb));
        Value* tstride = B.CreateMul(mc, ci64(te));
        for_range(ci64(0), mc, ci64(1), [&](Value* t) {
          Value* src_row = gep(a, B.CreateMul(B.CreateAdd(c0, t), arow));
          for_range(ci64(0), nb, ci64(1), [&](Value* j) {
            Value* src = gep(src_row, B.CreateMul(j, ci64(p.abpb)));
            Value* slot = B.CreateAdd(B.CreateMul(j, mc), t);
            B.CreateMemCpy(gep(AR, B.CreateMul(slot, ci64(p.abpb))), MaybeAlign(1), src, MaybeAlign(1), p.abpb);
            if (!needs_tab(f)) return;
            Value* e = gep(TB, B.CreateMul(slot, ci64(te)));
            Value* corr = ci32(0);
            if (dot32.eoff) {
              Value* sum = hadd_i(B.CreateSExt(load_bytes(src, f.a_qs, 32), vt(i32, 32)));
              corr = B.CreateMul(sum, ci32(-dot32.eoff));
            }
            store(corr, e, 0);
            store(f16_to_f32(load(i16, src, 0)), e, 4);
            if (f.act == DType::Q8_1) store(f16_to_f32(load(i16, src, 2)), e, 8);
          });
        });
        visit_rows(
            rt0, rt1, 16,
            [&](const RowTile& rt) {
              B.CreateCall(panel, {rt.w0, rt.gstep, rt.rstep, rt.bstride, ci64(rt.log2r), nb, P});
              const std::vector<int> sizes = g_4 ? std::vector<int>{p.MT, 4, 1} : tile_sizes;
              token_tiles(ci64(0), mc, sizes, [&](Value* m, int mt) {
                Value* out0 = gep(out, B.CreateMul(B.CreateAdd(B.CreateMul(B.CreateAdd(c0, m), N), rt.r), ci64(4)));
                B.CreateCall(mt == 1 ? g_1 : mt == 4 && g_4 ? g_4 : g_mt, {P, nb, gep(AR, B.CreateMul(m, ci64(p.abpb))), astride,
                                                    needs_tab(f) ? gep(TB, B.CreateMul(m, ci64(te))) : nullp, tstride,
                                                    out0, N});
                epilogue(B.CreateAdd(c0, m), rt.r, 16, mt);
              });
            },
            [&](Value* w0, Value* bstride, Value* r) {
              token_tiles(c0, B.CreateAdd(c0, mc), tile_sizes, [&](Value* m, int mt) {
                call_tile(mt == 1 ? t_one : t_row, w0, ci64(0), bstride, m, r, 1, mt);
              });
            });
      });
      B.CreateRetVoid();
      return;
    }

    // The task range is one contiguous range of rows, done in blocks of about kRowBlockBytes of
    // weights (a multiple of 16 rows, they stay in L2 while every token passes over them), each for
    // all tokens, tile by tile.
    Value* rb = B.CreateUDiv(ci64(kRowBlockBytes), B.CreateAdd(wrow, ci64(1)));
    rb = B.CreateSelect(B.CreateICmpULT(rb, ci64(16)), ci64(16), B.CreateSelect(B.CreateICmpUGT(rb, ci64(256)), ci64(256), rb));
    rb = B.CreateAnd(rb, ci64(~int64_t(15)));
    for_range(rt0, rt1, rb, [&](Value* r0) {
      Value* r1 = B.CreateAdd(r0, rb);
      r1 = B.CreateSelect(B.CreateICmpSLT(r1, rt1), r1, rt1);
      token_tiles(ci64(0), M, tile_sizes, [&](Value* m, int mt) {
        visit_rows(
            r0, r1, p.RG,
            [&](const RowTile& rt) { call_tile(mt == 1 ? t_tok : t_full, rt.w0, rt.rstep, rt.bstride, m, rt.r, p.RG, mt); },
            [&](Value* w0, Value* bstride, Value* r) { call_tile(mt == 1 ? t_one : t_row, w0, ci64(0), bstride, m, r, 1, mt); });
      });
    });
    B.CreateRetVoid();
  }

  // ------------------------------------------------------------------------------------------
  // quantize_<act>: rows of f32 [M, K] -> activation blocks (q8_0, q8_1, q8_K) or f16 / bf16
  // elements; bit-exact with activation_quantize_row.
  void emit_quantize(const KernelSpec& spec) {
    const DType act = spec.type;
    if (act == DType::F16 || act == DType::BF16) return emit_round_half(spec);
    const int be = act == DType::Q8_K ? 256 : 32;
    const int abpb = dtype_info(act).bytes_per_block;
    Function* fn = kernel_function(spec.symbol, false);
    begin(fn);
    KernelArgs ka = args_of(fn);
    Value* x = buf(ka, 0);
    Value* out = buf(ka, 1);
    Value* K = int_arg(ka, 0);
    Value* nb = B.CreateSDiv(K, ci64(be));
    for_range(ka.tb, ka.te, ci64(1), [&](Value* row) {
      Value* xr = gep(x, B.CreateMul(row, B.CreateMul(K, ci64(4))));
      Value* orow = gep(out, B.CreateMul(row, B.CreateMul(nb, ci64(abpb))));
      for_range(ci64(0), nb, ci64(1), [&](Value* j) {
        Value* xb = gep(xr, B.CreateMul(j, ci64(4 * be)));
        Value* ob = gep(orow, B.CreateMul(j, ci64(abpb)));
        if (act == DType::Q8_K) quantize_q8k_block(xb, ob);
        else quantize_q8_block(xb, ob, act == DType::Q8_1);
      });
    });
    B.CreateRetVoid();
  }

  // Rows of f32 [M, K] -> f16 or bf16 [M, K], 16 lanes at a time, then a scalar tail.
  void emit_round_half(const KernelSpec& spec) {
    const bool f16 = spec.type == DType::F16;
    Function* fn = kernel_function(spec.symbol, false);
    begin(fn);
    KernelArgs ka = args_of(fn);
    Value* x = buf(ka, 0);
    Value* out = buf(ka, 1);
    Value* K = int_arg(ka, 0);
    auto round = [&](Value* v) { return f16 ? f32_to_f16(v) : f32_to_bf16(v); };
    Value* nv = B.CreateSDiv(K, ci64(16));
    for_range(ka.tb, ka.te, ci64(1), [&](Value* row) {
      Value* xr = gep(x, B.CreateMul(row, B.CreateMul(K, ci64(4))));
      Value* orow = gep(out, B.CreateMul(row, B.CreateMul(K, ci64(2))));
      for_range(ci64(0), nv, ci64(1), [&](Value* j) {
        store(round(load(vt(f32, 16), gep(xr, B.CreateMul(j, ci64(64))))), gep(orow, B.CreateMul(j, ci64(32))));
      });
      for_range(B.CreateMul(nv, ci64(16)), K, ci64(1), [&](Value* e) {
        store(round(load(f32, gep(xr, B.CreateMul(e, ci64(4))))), gep(orow, B.CreateMul(e, ci64(2))));
      });
    });
    B.CreateRetVoid();
  }

  // <32 x f32> -> <32 x i32> rounded half to even, for |x| < 2^22 (ggml's nearest_int): the sum with
  // 1.5 * 2^23 rounds in the default mode and leaves the integer in the low mantissa bits. No
  // roundeven intrinsic, which would be a libm call on SSE2.
  Value* nearest_int(Value* x) {
    Value* bits = B.CreateBitCast(B.CreateFAdd(x, splatf(32, 12582912.0)), vt(i32, 32));
    return B.CreateSub(B.CreateAnd(bits, splat(i32, 32, 0x007FFFFF)), splat(i32, 32, 0x00400000));
  }

  void quantize_q8_block(Value* xb, Value* ob, bool with_sum) {
    Value* xv = load(vt(f32, 32), xb);
    Value* amax = B.CreateFPMaxReduce(B.CreateUnaryIntrinsic(Intrinsic::fabs, xv));
    // activation_quantize_row: 127 / amax, levels rounded half to even (ggml-cpu's SIMD quantizer).
    Value* d = B.CreateFDiv(amax, cf32(127.0));
    Value* id = B.CreateSelect(B.CreateFCmpUNE(amax, cf32(0.0)), B.CreateFDiv(cf32(127.0), amax), cf32(0.0));
    store(f32_to_f16(d), ob, 0);
    Value* q = nearest_int(B.CreateFMul(xv, bcast(id, 32)));
    store(B.CreateTrunc(q, vt(i8, 32)), ob, with_sum ? 4 : 2);
    if (with_sum) store(f32_to_f16(B.CreateFMul(B.CreateSIToFP(hadd_i(q), f32), d)), ob, 2);
  }

  void quantize_q8k_block(Value* xb, Value* ob) {
    std::vector<Value*> xs(8), ax(8);
    Value* amax = nullptr;
    for (int p = 0; p < 8; ++p) {
      xs[size_t(p)] = load(vt(f32, 32), xb, 128 * p);
      ax[size_t(p)] = B.CreateUnaryIntrinsic(Intrinsic::fabs, xs[size_t(p)]);
      Value* m = B.CreateFPMaxReduce(ax[size_t(p)]);
      amax = amax ? B.CreateMaxNum(amax, m) : m;
    }
    // The signed value of the first element of largest magnitude.
    Value* idx = ci32(0);
    for (int p = 7; p >= 0; --p) {
      Value* mask = B.CreateBitCast(B.CreateFCmpOEQ(ax[size_t(p)], bcast(amax, 32)), i32);
      Value* first = B.CreateAdd(ci32(32 * p), B.CreateBinaryIntrinsic(Intrinsic::cttz, mask, B.getTrue()));
      idx = B.CreateSelect(B.CreateICmpNE(mask, ci32(0)), first, idx);
    }
    if_then(
        B.CreateFCmpOEQ(amax, cf32(0.0)),
        [&] { B.CreateMemSet(ob, B.getInt8(0), 292, MaybeAlign(1)); },
        [&] {
          Value* max = load(f32, gep(xb, B.CreateMul(B.CreateZExt(idx, i64), ci64(4))));
          Value* iscale = B.CreateFDiv(cf32(-127.0), max);
          std::vector<Value*> sums;
          for (int p = 0; p < 8; ++p) {
            Value* qi = nearest_int(B.CreateFMul(bcast(iscale, 32), xs[size_t(p)]));
            qi = B.CreateBinaryIntrinsic(Intrinsic::smin, qi, splat(i32, 32, 127));
            store(B.CreateTrunc(qi, vt(i8, 32)), ob, 4 + 32 * p);
            for (int h = 0; h < 2; ++h) sums.push_back(hadd_i(slice(qi, unsigned(16 * h), 16)));
          }
          Value* bs = zero(vt(i16, 16));
          for (int gi = 0; gi < 16; ++gi) bs = B.CreateInsertElement(bs, B.CreateTrunc(sums[size_t(gi)], i16), uint64_t(gi));
          store(bs, ob, 4 + 256);
          store(B.CreateFDiv(cf32(1.0), iscale), ob, 0);
        });
  }

  // ------------------------------------------------------------------------------------------
  // get_rows_<fmt>: table [V, D], ids i32 [n], out f32 [n, D].
  void emit_get_rows(const KernelSpec& spec) {
    const DType t = spec.type;
    const DTypeInfo& info = dtype_info(t);
    Function* fn = kernel_function(spec.symbol, false);
    begin(fn);
    KernelArgs ka = args_of(fn);
    Value* table = buf(ka, 0);
    Value* ids = buf(ka, 1);
    Value* out = buf(ka, 2);
    Value* D = int_arg(ka, 0);
    Value* nb = B.CreateSDiv(D, ci64(info.block_size));
    Value* rbytes = B.CreateMul(nb, ci64(info.bytes_per_block));
    for_range(ka.tb, ka.te, ci64(1), [&](Value* tok) {
      Value* id = B.CreateSExt(load(i32, gep(ids, B.CreateMul(tok, ci64(4)))), i64);
      Value* src = gep(table, B.CreateMul(id, rbytes));
      Value* dst = gep(out, B.CreateMul(tok, B.CreateMul(D, ci64(4))));
      if (info.quantized) {
        for_range(ci64(0), nb, ci64(1), [&](Value* j) {
          emit_dequant_block(*this, t, gep(src, B.CreateMul(j, ci64(info.bytes_per_block))),
                             gep(dst, B.CreateMul(j, ci64(4 * info.block_size))));
        });
        return;
      }
      const int es = info.bytes_per_block;
      auto conv = [&](Value* p, unsigned n) -> Value* {
        if (t == DType::F32) return load(n == 1 ? f32 : (Type*)vt(f32, n), p);
        Value* h = load(n == 1 ? i16 : (Type*)vt(i16, n), p);
        return t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
      };
      Value* nv = B.CreateSDiv(D, ci64(8));
      for_range(ci64(0), nv, ci64(1), [&](Value* j) {
        store(conv(gep(src, B.CreateMul(j, ci64(8 * es))), 8), gep(dst, B.CreateMul(j, ci64(32))));
      });
      for_range(B.CreateMul(nv, ci64(8)), D, ci64(1), [&](Value* e) {
        store(conv(gep(src, B.CreateMul(e, ci64(es))), 1), gep(dst, B.CreateMul(e, ci64(4))));
      });
    });
    B.CreateRetVoid();
  }
};

}  // namespace

void check_spec(const KernelSpec& spec) {
  switch (spec.kind) {
    case KernelKind::QMatmul: {
      const QMatmulKernel& k = spec.mm;
      const bool fl = is_float_weight(k.weight);
      if (!fl && !int_format(k.weight)) fail("qmatmul: no kernel for {} weights", dtype_name(k.weight));
      // Float weights also take f32 activations (the IR allows both; ggml's rounding is the pass's choice).
      const DType want = dtype_info(k.weight).vec_dot_type;
      if (k.act != want && !(fl && k.act == DType::F32))
        fail("qmatmul: {} weights take {} activations{}, not {}", dtype_name(k.weight), dtype_name(want),
             fl && want != DType::F32 ? " or f32" : "", dtype_name(k.act));
      if (!layout_supported(k.weight, k.layout)) fail("qmatmul: layout '{}' is not supported for {}", k.layout, dtype_name(k.weight));
      if (k.sched.rows_per_task < 1) fail("qmatmul: rows_per_task must be >= 1");
      if (k.sched.k_unroll < 1 || k.sched.k_unroll > 8) fail("qmatmul: k_unroll must be in [1, 8]");
      if (k.sched.vector_bits != 128 && k.sched.vector_bits != 256 && k.sched.vector_bits != 512)
        fail("qmatmul: vector_bits must be 128, 256 or 512");
      if (k.sched.m_tile < 1 || k.sched.m_tile > 16) fail("qmatmul: m_tile must be in [1, 16]");
      return;
    }
    case KernelKind::Quantize:
      if (spec.type != DType::Q8_0 && spec.type != DType::Q8_1 && spec.type != DType::Q8_K && spec.type != DType::F16 &&
          spec.type != DType::BF16)
        fail("quantize: no activation quantizer for {}", dtype_name(spec.type));
      return;
    case KernelKind::GetRows:
      if (!is_float_weight(spec.type) && !int_format(spec.type))
        fail("get_rows: cannot decode {}", dtype_name(spec.type));
      return;
  }
}

void emit_kernel(Module& m, const HostCpu& target, const KernelSpec& spec) {
  check_spec(spec);
  Kernels k(m, target);
  switch (spec.kind) {
    case KernelKind::QMatmul: k.emit_matmul(spec); break;
    case KernelKind::Quantize: k.emit_quantize(spec); break;
    case KernelKind::GetRows: k.emit_get_rows(spec); break;
  }
}

}  // namespace nibble::cpu::detail

namespace nibble::cpu {

uint64_t qmatmul_scratch_bytes(const QMatmulKernel& k, int64_t K) {
  const detail::IntFormat* f = detail::int_format(k.weight);
  if (!f || !k.sched.gemm || K <= 0) return 0;
  return detail::gemm_scratch_bytes(*f, K / f->be);
}

}  // namespace nibble::cpu
