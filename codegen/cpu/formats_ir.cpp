// Block decoders of every quantized format as LLVM IR, and the integer dot products built on them.
// Layouts: ir/formats/block_layouts.h. Each decoder loads whole vectors of packed levels and splits
// them with shifts and masks; no element-wise work.
#include "codegen/cpu/formats_ir.h"

#include "support/error.h"

namespace nibble::cpu::detail {
using namespace llvm;

const IntFormat* int_format(DType w) {
  //                                be   bpb  act         abpb a_qs grp off  sgn    mins
  static const IntFormat kQ4_0{DType::Q4_0, 32, 18, DType::Q8_0, 34, 2, 0, 8, false, MinKind::None};
  static const IntFormat kQ4_1{DType::Q4_1, 32, 20, DType::Q8_1, 36, 4, 0, 0, false, MinKind::Affine};
  static const IntFormat kQ5_0{DType::Q5_0, 32, 22, DType::Q8_0, 34, 2, 0, 16, false, MinKind::None};
  static const IntFormat kQ5_1{DType::Q5_1, 32, 24, DType::Q8_1, 36, 4, 0, 0, false, MinKind::Affine};
  static const IntFormat kQ8_0{DType::Q8_0, 32, 34, DType::Q8_0, 34, 2, 0, 0, true, MinKind::None};
  static const IntFormat kQ8_1{DType::Q8_1, 32, 36, DType::Q8_1, 36, 4, 0, 0, true, MinKind::None};
  static const IntFormat kQ2_K{DType::Q2_K, 256, 84, DType::Q8_K, 292, 4, 16, 0, false, MinKind::KMins};
  static const IntFormat kQ3_K{DType::Q3_K, 256, 110, DType::Q8_K, 292, 4, 16, 4, false, MinKind::None};
  static const IntFormat kQ4_K{DType::Q4_K, 256, 144, DType::Q8_K, 292, 4, 32, 0, false, MinKind::KMins};
  static const IntFormat kQ5_K{DType::Q5_K, 256, 176, DType::Q8_K, 292, 4, 32, 0, false, MinKind::KMins};
  static const IntFormat kQ6_K{DType::Q6_K, 256, 210, DType::Q8_K, 292, 4, 16, 32, false, MinKind::None};
  static const IntFormat kQ8_K{DType::Q8_K, 256, 292, DType::Q8_K, 292, 4, 0, 0, true, MinKind::None};
  switch (w) {
    case DType::Q4_0: return &kQ4_0;
    case DType::Q4_1: return &kQ4_1;
    case DType::Q5_0: return &kQ5_0;
    case DType::Q5_1: return &kQ5_1;
    case DType::Q8_0: return &kQ8_0;
    case DType::Q8_1: return &kQ8_1;
    case DType::Q2_K: return &kQ2_K;
    case DType::Q3_K: return &kQ3_K;
    case DType::Q4_K: return &kQ4_K;
    case DType::Q5_K: return &kQ5_K;
    case DType::Q6_K: return &kQ6_K;
    case DType::Q8_K: return &kQ8_K;
    default: return nullptr;
  }
}

ChunkSegs chunk_segs(DType w, int V) {
  const IntFormat* f = int_format(w);
  if (f->be == 32) {
    if (V == 64) return {{{0, 32}, {32, 32}}};  // two consecutive blocks (decode_pair)
    return {{{0, 32}}};
  }
  ChunkSegs s;
  if (V == 32) {
    for (int i = 0; i < 8; ++i) s.push_back({{32 * i, 32}});
    return s;
  }
  switch (w) {
    case DType::Q4_K:
    case DType::Q5_K:  // a 64-byte load of 4-bit planes: low nibbles, then high nibbles
      for (int c = 0; c < 2; ++c)
        for (int k = 0; k < 2; ++k) s.push_back({{128 * c + 32 * k, 32}, {128 * c + 64 + 32 * k, 32}});
      return s;
    case DType::Q2_K:
    case DType::Q3_K:  // the two halves' 2-bit planes at the same shift
      for (int sh = 0; sh < 4; ++sh) s.push_back({{32 * sh, 32}, {128 + 32 * sh, 32}});
      return s;
    default:  // natural order
      for (int c = 0; c < 4; ++c) s.push_back({{64 * c, 32}, {64 * c + 32, 32}});
      return s;
  }
}

int elem_at(const std::vector<Seg>& segs, int pos) {
  for (const Seg& s : segs) {
    if (pos < s.len) return s.elem + pos;
    pos -= s.len;
  }
  fail("elem_at: position out of range");
}

IntDot::IntDot(IrGen& gen, const IntFormat& fmt, int v) : f(fmt), V(v), L(v / 4), g(gen) {
  segs = chunk_segs(f.w, V);
  eoff = f.sgn ? (g.isa == Isa::Vnni ? 128 : 0) : f.offset;
  if (!f.group) ls = LaneScale::None;
  else if (g.isa == Isa::Vnni) ls = eoff ? LaneScale::I32 : LaneScale::I16;
  else if (g.isa == Isa::Avx2) ls = LaneScale::I16;
  else ls = LaneScale::I32;
}

// ---- Decoders: scales (once per block) and the levels of one chunk, so a caller can decode chunk
// by chunk where the levels are used.
WBlock IntDot::decode(Value* p) {
  WBlock w = decode_scales(p);
  for (size_t c = 0; c < segs.size(); ++c) w.q.push_back(decode_levels(p, int(c)));
  return w;
}

WBlock IntDot::decode_scales(Value* p) {
  auto& B = g.B;
  WBlock w;
  auto f16 = [&](int off, Value*& raw) {
    raw = g.load(g.i16, p, off);
    return g.f16_to_f32(raw);
  };
  auto u32 = [&](int off) { return g.load(g.i32, p, off); };
  auto K = [&](uint32_t v) { return g.ci32(int64_t(v)); };
  switch (f.w) {
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0:
    case DType::Q8_1:
      w.d = f16(0, w.d_raw);
      break;
    case DType::Q4_1:
    case DType::Q5_1:
      w.d = f16(0, w.d_raw);
      w.dmin = f16(2, w.dmin_raw);
      break;
    case DType::Q8_K:
      w.d = g.load(g.f32, p, 0);
      break;
    case DType::Q2_K: {
      Value* S = g.load_bytes(p, 0, 16);
      w.gscale = B.CreateZExt(g.and8(S, 15), g.vt(g.i32, 16));
      w.gmin = B.CreateZExt(g.lshr8(S, 4), g.vt(g.i32, 16));
      w.d = f16(80, w.d_raw);
      w.dmin = f16(82, w.dmin_raw);
      break;
    }
    case DType::Q3_K: {
      // 16 scales of 6 bits (see kquant_helpers.h), rearranged four bytes at a time.
      Value* a0 = u32(96);
      Value* a1 = u32(100);
      Value* tmp = u32(104);
      auto m2 = K(0x0f0f0f0f), m1 = K(0x03030303);
      Value* s2 = B.CreateOr(B.CreateAnd(B.CreateLShr(a0, 4), m2), B.CreateShl(B.CreateAnd(B.CreateLShr(tmp, 4), m1), 4));
      Value* s3 = B.CreateOr(B.CreateAnd(B.CreateLShr(a1, 4), m2), B.CreateShl(B.CreateAnd(B.CreateLShr(tmp, 6), m1), 4));
      Value* s0 = B.CreateOr(B.CreateAnd(a0, m2), B.CreateShl(B.CreateAnd(tmp, m1), 4));
      Value* s1 = B.CreateOr(B.CreateAnd(a1, m2), B.CreateShl(B.CreateAnd(B.CreateLShr(tmp, 2), m1), 4));
      Value* v = g.vec_of({s0, s1, s2, s3});
      v = B.CreateZExt(B.CreateBitCast(v, g.vt(g.i8, 16)), g.vt(g.i32, 16));
      w.gscale = B.CreateSub(v, g.splat(g.i32, 16, 32));
      w.d = f16(108, w.d_raw);
      break;
    }
    case DType::Q4_K:
    case DType::Q5_K: {
      // 8 scales and 8 mins of 6 bits in 12 bytes, rearranged four bytes at a time.
      Value* u0 = u32(4);
      Value* u1 = u32(8);
      Value* u2 = u32(12);
      auto k1 = K(0x3f3f3f3f), k2 = K(0x0f0f0f0f), k3 = K(0x03030303);
      Value* u3 = B.CreateOr(B.CreateAnd(B.CreateLShr(u2, 4), k2), B.CreateShl(B.CreateAnd(B.CreateLShr(u1, 6), k3), 4));
      Value* mins_lo = B.CreateAnd(u1, k1);
      Value* sc_hi = B.CreateOr(B.CreateAnd(u2, k2), B.CreateShl(B.CreateAnd(B.CreateLShr(u0, 6), k3), 4));
      Value* sc_lo = B.CreateAnd(u0, k1);
      auto bytes8 = [&](Value* lo, Value* hi) {
        return B.CreateZExt(B.CreateBitCast(g.vec_of({lo, hi}), g.vt(g.i8, 8)), g.vt(g.i32, 8));
      };
      w.gscale = bytes8(sc_lo, sc_hi);
      w.gmin = bytes8(mins_lo, u3);
      w.d = f16(0, w.d_raw);
      w.dmin = f16(2, w.dmin_raw);
      break;
    }
    case DType::Q6_K:
      w.gscale = B.CreateSExt(g.load_bytes(p, 192, 16), g.vt(g.i32, 16));
      w.d = f16(208, w.d_raw);
      break;
    default:
      fail("decode: {} is not an integer-dot format", dtype_name(f.w));
  }
  return w;
}

namespace {
// Where a q4_0 / q4_1 / q5_0 / q5_1 block keeps its fifth bits (qh) and its nibbles (qs).
struct NibbleOffsets {
  bool five;
  int qh, qs;
};
NibbleOffsets nibble_offsets(DType w) {
  const bool affine = w == DType::Q4_1 || w == DType::Q5_1;
  const bool five = w == DType::Q5_0 || w == DType::Q5_1;
  const int qh = affine ? 4 : 2;
  return {five, qh, qh + (five ? 4 : 0)};
}
}  // namespace

Value* IntDot::decode_levels(Value* p, int c) {
  auto& B = g.B;
  // Byte-mask vector of chunk c: masks[i] = 1 << (element of byte i) / 32.
  auto seg_bits = [&]() {
    std::vector<int64_t> m;
    for (const Seg& s : segs[size_t(c)])
      for (int i = 0; i < s.len; ++i) m.push_back(int64_t(1) << (s.elem / 32));
    return m;
  };
  auto dup32 = [&](int off) {
    Value* h = g.load_bytes(p, off, 32);
    return V == 64 ? g.concat(h, h) : h;
  };
  switch (f.w) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1: {
      const auto [five, qh_off, qs_off] = nibble_offsets(f.w);
      Value* x = g.load_bytes(p, qs_off, 16);
      Value* q = g.concat(g.and8(x, 15), g.lshr8(x, 4));
      if (five) {
        Value* bits = B.CreateBitCast(g.load(g.i32, p, qh_off), g.vt(g.i1, 32));
        q = B.CreateOr(q, B.CreateSelect(bits, g.splat(g.i8, 32, 16), g.zero(g.vt(g.i8, 32))));
      }
      return q;
    }
    case DType::Q8_0:
    case DType::Q8_1:
      return g.load_bytes(p, f.w == DType::Q8_0 ? 2 : 4, 32);
    case DType::Q8_K:
      return g.load_bytes(p, 4 + segs[size_t(c)][0].elem, unsigned(V));
    case DType::Q2_K:
      if (V == 32) return g.and8(g.lshr8(g.load_bytes(p, 16 + 32 * (c / 4), 32), 2 * (c % 4)), 3);
      return g.and8(g.lshr8(g.load_bytes(p, 16, 64), 2 * c), 3);
    case DType::Q3_K: {
      Value* lo;
      if (V == 32) lo = g.and8(g.lshr8(g.load_bytes(p, 32 + 32 * (c / 4), 32), 2 * (c % 4)), 3);
      else lo = g.and8(g.lshr8(g.load_bytes(p, 32, 64), 2 * c), 3);
      return B.CreateOr(lo, g.bits_select(dup32(0), seg_bits(), 4));
    }
    case DType::Q4_K:
    case DType::Q5_K: {
      const bool five = f.w == DType::Q5_K;
      Value* X = g.load_bytes(p, (five ? 48 : 16) + V * (c / 2), unsigned(V));
      Value* q = c % 2 ? g.lshr8(X, 4) : g.and8(X, 15);
      if (five) q = B.CreateOr(q, g.bits_select(dup32(16), seg_bits(), 16));
      return q;
    }
    case DType::Q6_K: {
      if (V == 32) {
        const int h = c / 4, s = c % 4;
        Value* Lb = g.load_bytes(p, 64 * h + 32 * (s & 1), 32);
        Value* nib = s < 2 ? g.and8(Lb, 15) : g.lshr8(Lb, 4);
        Value* hi = g.shl8(g.and8(g.lshr8(g.load_bytes(p, 128 + 32 * h, 32), 2 * s), 3), 4);
        return B.CreateOr(nib, hi);
      }
      const int h = c / 2, k = c % 2;
      Value* Lb = g.load_bytes(p, 64 * h, 64);
      Value* nib = k ? g.lshr8(Lb, 4) : g.and8(Lb, 15);
      Value* hi = g.shl8(g.shr_per_seg(dup32(128 + 32 * h), {4 * k, 4 * k + 2}, 3), 4);
      return B.CreateOr(nib, hi);
    }
    default:
      fail("decode: {} is not an integer-dot format", dtype_name(f.w));
  }
}

bool IntDot::nibble_pair() const {
  return V == 64 && (f.w == DType::Q4_0 || f.w == DType::Q4_1 || f.w == DType::Q5_0 || f.w == DType::Q5_1);
}

std::vector<int> IntDot::pair_lane_blocks() const {
  std::vector<int> m(16);
  for (int l = 0; l < 16; ++l) m[size_t(l)] = nibble_pair() ? (l / 4) % 2 : l / 8;
  return m;
}

// Levels of the two blocks in pair order: [A 0-15 | B 0-15 | A 16-31 | B 16-31] for the nibble formats.
// Their low nibbles hold levels 0-15 and their high nibbles 16-31, so one 32-byte vector of both
// blocks' bytes gives the chunk with one mask and one shift, instead of a mask, a shift and three
// inserts per pair in natural order. The activation pays the reordering once for all the rows.
static const std::vector<int> kNibblePairOrder = [] {
  std::vector<int> m;
  for (int base : {0, 32, 16, 48})
    for (int i = 0; i < 16; ++i) m.push_back(base + i);
  return m;
}();

WBlock IntDot::decode_pair(Value* p0, Value* p1) {
  if (f.be != 32 || V != 64) fail("decode_pair: 32-element blocks in 64-byte chunks only");
  WBlock a = decode_scales(p0), b = decode_scales(p1);
  WBlock w;
  if (nibble_pair()) {
    auto& B = g.B;
    const auto [five, qh_off, qs_off] = nibble_offsets(f.w);
    Value* x = g.concat(g.load_bytes(p0, qs_off, 16), g.load_bytes(p1, qs_off, 16));
    Value* q = g.concat(g.and8(x, 15), g.lshr8(x, 4));
    if (five) {
      auto bits = [&](Value* p) { return B.CreateBitCast(g.load(g.i32, p, qh_off), g.vt(g.i1, 32)); };
      Value* hb = g.shuffle(g.concat(bits(p0), bits(p1)), kNibblePairOrder);
      q = B.CreateOr(q, B.CreateSelect(hb, g.splat(g.i8, 64, 16), g.zero(g.vt(g.i8, 64))));
    }
    w.q = {q};
  } else {
    w.q = {g.concat(decode_levels(p0, 0), decode_levels(p1, 0))};
  }
  w.d = g.f16_to_f32(g.vec_of({a.d_raw, b.d_raw}));
  if (a.dmin_raw) w.dmin = g.f16_to_f32(g.vec_of({a.dmin_raw, b.dmin_raw}));
  return w;
}

ABlock IntDot::load_act_pair(Value* p) {
  ABlock a;
  if (nibble_pair())
    a.a = {g.concat_all({g.load_bytes(p, f.a_qs, 16), g.load_bytes(p, f.abpb + f.a_qs, 16),
                         g.load_bytes(p, f.a_qs + 16, 16), g.load_bytes(p, f.abpb + f.a_qs + 16, 16)})};
  else
    a.a = {g.concat(g.load_bytes(p, f.a_qs, 32), g.load_bytes(p, f.abpb + f.a_qs, 32))};
  a.corr = {eoff ? corr_of(a.a[0]) : nullptr};
  a.d = g.f16_to_f32(g.vec_of({g.load(g.i16, p, 0), g.load(g.i16, p, f.abpb)}));
  if (f.act == DType::Q8_1) a.s = g.f16_to_f32(g.vec_of({g.load(g.i16, p, 2), g.load(g.i16, p, f.abpb + 2)}));
  return a;
}

Value* IntDot::lane_vector(Value* gvec, int c, int lanes, int per_lane) {
  std::vector<int> mask(static_cast<size_t>(lanes));
  for (int l = 0; l < lanes; ++l) mask[size_t(l)] = elem_at(segs[size_t(c)], l * per_lane) / f.group;
  return g.shuffle(gvec, mask);
}

void IntDot::prepare_for_dot(WBlock& w) {
  auto& B = g.B;
  if (f.sgn && g.isa == Isa::Vnni)
    for (Value*& q : w.q) q = B.CreateXor(q, g.splat(g.i8, unsigned(V), 0x80));
  if (ls != LaneScale::None) {
    Value* gs = ls == LaneScale::I16 ? B.CreateTrunc(w.gscale, g.vt(g.i16, g.lanes(w.gscale))) : w.gscale;
    for (size_t c = 0; c < w.q.size(); ++c)
      w.lscale.push_back(ls == LaneScale::I16 ? lane_vector(gs, int(c), 2 * L, 2) : lane_vector(gs, int(c), L, 4));
  } else {
    w.lscale.assign(w.q.size(), nullptr);
  }
  if (f.mk == MinKind::KMins) {
    Value* m16 = B.CreateTrunc(w.gmin, g.vt(g.i16, g.lanes(w.gmin)));
    if (g.lanes(m16) == 8) m16 = g.shuffle(m16, {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7});
    w.gmin16 = m16;
  }
}

Value* IntDot::corr_of(Value* a) {
  auto& B = g.B;
  switch (g.isa) {
    case Isa::Vnni:
      return B.CreateSub(g.zero(g.vt(g.i32, unsigned(L))),
                         g.dpbusd(g.zero(g.vt(g.i32, unsigned(L))), g.splat(g.i8, unsigned(V), eoff), a));
    case Isa::Avx2:
      return g.maddubs(g.splat(g.i8, unsigned(V), eoff), a);
    case Isa::Generic: {
      // -eoff * (sum of 4 adjacent activations), through 16-bit pair products.
      Value* a16 = B.CreateSExt(a, g.vt(g.i16, unsigned(V)));
      return g.sum2_generic(g.madd16(a16, g.splat(g.i16, unsigned(V), -eoff)));
    }
  }
  return nullptr;
}

ABlock IntDot::load_act(Value* p) {
  ABlock a;
  for (const auto& cs : segs) {
    // Chunks of consecutive segments load at once.
    Value* v = nullptr;
    bool contiguous = true;
    for (size_t i = 1; i < cs.size(); ++i) contiguous &= cs[i].elem == cs[i - 1].elem + cs[i - 1].len;
    if (contiguous) {
      v = g.load_bytes(p, f.a_qs + cs[0].elem, unsigned(V));
    } else {
      for (const Seg& s : cs) {
        Value* x = g.load_bytes(p, f.a_qs + s.elem, unsigned(s.len));
        v = v ? g.concat(v, x) : x;
      }
    }
    a.a.push_back(v);
    a.corr.push_back(eoff ? corr_of(v) : nullptr);
  }
  if (f.act == DType::Q8_K) {
    a.d = g.load(g.f32, p, 0);
    a.bsums = g.load(g.vt(g.i16, 16), p, 4 + 256);
  } else {
    a.d = g.f16_to_f32(g.load(g.i16, p, 0));
    if (f.act == DType::Q8_1) a.s = g.f16_to_f32(g.load(g.i16, p, 2));
  }
  return a;
}

Value* IntDot::dot_chunk(Value* acc, Value* q, Value* a, Value* corr, Value* lscale) {
  auto& B = g.B;
  auto Z = [&]() { return g.zero(g.vt(g.i32, unsigned(L))); };
  switch (g.isa) {
    case Isa::Vnni: {
      if (!lscale) {
        Value* base = acc ? (corr ? B.CreateAdd(acc, corr) : acc) : (corr ? corr : Z());
        return g.dpbusd(base, q, a);
      }
      if (ls == LaneScale::I16) return g.dpwssd(acc ? acc : Z(), g.maddubs(q, a), lscale);
      Value* t = B.CreateMul(g.dpbusd(corr ? corr : Z(), q, a), lscale);
      return acc ? B.CreateAdd(acc, t) : t;
    }
    case Isa::Avx2: {
      Value* p16;
      if (f.sgn) {
        Value* aq = B.CreateBinaryIntrinsic(Intrinsic::abs, q, B.getFalse());
        Value* sa = V == 32 ? g.intrinsic(Intrinsic::x86_avx2_psign_b, {a, q})
                            : B.CreateSelect(B.CreateICmpSLT(q, g.zero(q->getType())), B.CreateNeg(a), a);
        p16 = g.maddubs(aq, sa);
      } else {
        p16 = g.maddubs(q, a);
      }
      if (corr) p16 = B.CreateSub(p16, corr);
      Value* t = g.maddwd(p16, lscale ? lscale : g.splat(g.i16, unsigned(2 * L), 1));
      return acc ? B.CreateAdd(acc, t) : t;
    }
    case Isa::Generic: {
      // Bytes widened to 16 bits, pair products summed in 32 bits (pmaddwd on x86), then pairs again.
      Value* wq = f.sgn ? B.CreateSExt(q, g.vt(g.i16, unsigned(V))) : B.CreateZExt(q, g.vt(g.i16, unsigned(V)));
      Value* t = g.sum2_generic(g.madd16(wq, B.CreateSExt(a, g.vt(g.i16, unsigned(V)))));
      if (corr) t = B.CreateAdd(t, corr);
      if (lscale) t = B.CreateMul(t, lscale);
      return acc ? B.CreateAdd(acc, t) : t;
    }
  }
  return nullptr;
}

Value* IntDot::block_dot(const WBlock& w, const ABlock& a) {
  Value* acc = nullptr;
  for (size_t c = 0; c < w.q.size(); ++c) acc = dot_chunk(acc, w.q[c], a.a[c], a.corr[c], w.lscale[c]);
  return acc;
}

// ---- Float decoding (get_rows), bit-exact with the reference decoders.
void emit_dequant_block(IrGen& g, DType t, Value* blk, Value* out) {
  auto& B = g.B;
  const IntFormat* f = int_format(t);
  if (!f) fail("emit_dequant_block: {} is not a block format", dtype_name(t));
  IntDot dot(g, *f, 32);
  WBlock w = dot.decode(blk);
  Value* fscale = nullptr;  // <G x f32> per-group float scales
  Value* fmin = nullptr;
  if (f->group) {
    const unsigned G = g.lanes(w.gscale);
    fscale = B.CreateFMul(g.bcast(w.d, G), B.CreateSIToFP(w.gscale, g.vt(g.f32, G)));
    if (w.gmin) fmin = B.CreateFMul(g.bcast(w.dmin, G), B.CreateSIToFP(w.gmin, g.vt(g.f32, G)));
  }
  for (size_t c = 0; c < w.q.size(); ++c) {
    int pos = 0;
    for (const Seg& s : dot.segs[c]) {
      const unsigned n = unsigned(s.len);
      Value* q = g.slice(w.q[c], unsigned(pos), n);
      Value* v = f->sgn ? B.CreateSExt(q, g.vt(g.i32, n)) : B.CreateZExt(q, g.vt(g.i32, n));
      if (f->offset) v = B.CreateSub(v, g.splat(g.i32, n, f->offset));
      Value* x = B.CreateSIToFP(v, g.vt(g.f32, n));
      Value* y;
      if (f->group) {
        std::vector<int> m(n);
        for (unsigned i = 0; i < n; ++i) m[i] = (s.elem + int(i)) / f->group;
        y = B.CreateFMul(g.shuffle(fscale, m), x);
        if (fmin) y = B.CreateFSub(y, g.shuffle(fmin, m));
      } else {
        y = B.CreateFMul(x, g.bcast(w.d, n));
        if (f->mk == MinKind::Affine) y = B.CreateFAdd(y, g.bcast(w.dmin, n));
      }
      g.store(y, out, int64_t(s.elem) * 4);
      pos += s.len;
    }
  }
}

}  // namespace nibble::cpu::detail
