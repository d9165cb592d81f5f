#include "codegen/cpu/ir_builder.h"

#include "support/error.h"

namespace nibble::cpu::detail {
using namespace llvm;

IrGen::IrGen(Module& m, const HostCpu& target) : M(m), C(m.getContext()), B(m.getContext()), T(target) {
  i1 = Type::getInt1Ty(C);
  i8 = Type::getInt8Ty(C);
  i16 = Type::getInt16Ty(C);
  i32 = Type::getInt32Ty(C);
  i64 = Type::getInt64Ty(C);
  f32 = Type::getFloatTy(C);
  ptr = PointerType::get(C, 0);
  void_ty = Type::getVoidTy(C);
  if ((T.avx512vnni && T.avx512vl && T.avx512bw) || (T.avxvnni && T.avx2)) isa = Isa::Vnni;
  else if (T.avx2) isa = Isa::Avx2;
  else isa = Isa::Generic;
  has512 = T.avx512f && T.avx512bw;
  x86 = T.triple.rfind("x86_64", 0) == 0;
}

Function* IrGen::new_function(const std::string& name, Type* ret, const std::vector<Type*>& params, bool external,
                              bool wide) {
  auto* fty = FunctionType::get(ret, params, false);
  auto* f = Function::Create(fty, external ? GlobalValue::ExternalLinkage : GlobalValue::InternalLinkage, name, M);
  f->addFnAttr(Attribute::NoUnwind);
  if (!T.name.empty()) f->addFnAttr("target-cpu", T.name);
  if (!T.features_string.empty()) f->addFnAttr("target-features", T.features_string);
  if (wide && has512) {
    f->addFnAttr("min-legal-vector-width", "512");
    f->addFnAttr("prefer-vector-width", "512");
  } else {
    f->addFnAttr("min-legal-vector-width", "256");
  }
  return f;
}

void IrGen::begin(Function* f) {
  F = f;
  B.SetInsertPoint(BasicBlock::Create(C, "entry", f));
}

Constant* IrGen::const_vec(Type* e, const std::vector<int64_t>& v) {
  std::vector<Constant*> c;
  c.reserve(v.size());
  for (int64_t x : v) c.push_back(ConstantInt::get(e, uint64_t(x), true));
  return ConstantVector::get(c);
}

Value* IrGen::load(Type* t, Value* p, int64_t off) {
  return B.CreateAlignedLoad(t, gep(p, off), MaybeAlign(1));
}

void IrGen::store(Value* v, Value* p, int64_t off) { B.CreateAlignedStore(v, gep(p, off), MaybeAlign(1)); }

unsigned IrGen::lanes(Value* v) const { return unsigned(cast<FixedVectorType>(v->getType())->getNumElements()); }

Value* IrGen::concat(Value* a, Value* b) {
  const unsigned n = lanes(a);
  std::vector<int> mask(2 * n);
  for (unsigned i = 0; i < 2 * n; ++i) mask[i] = int(i);
  return B.CreateShuffleVector(a, b, mask);
}

Value* IrGen::slice(Value* v, unsigned start, unsigned n) {
  if (start == 0 && n == lanes(v)) return v;
  std::vector<int> mask(n);
  for (unsigned i = 0; i < n; ++i) mask[i] = int(start + i);
  return B.CreateShuffleVector(v, mask);
}

Value* IrGen::hadd_f(Value* v) {
  auto* r = B.CreateFAddReduce(ConstantFP::get(f32, -0.0), v);
  cast<Instruction>(r)->setHasAllowReassoc(true);
  return r;
}

Value* IrGen::fmuladd(Value* a, Value* b, Value* c) {
  return B.CreateIntrinsic(Intrinsic::fmuladd, {a->getType()}, {a, b, c});
}

Value* IrGen::lshr8(Value* v, int n) {
  if (n == 0) return v;
  return B.CreateLShr(v, ConstantInt::get(v->getType(), n));
}
Value* IrGen::shl8(Value* v, int n) {
  if (n == 0) return v;
  return B.CreateShl(v, ConstantInt::get(v->getType(), n));
}
Value* IrGen::and8(Value* v, int m) { return B.CreateAnd(v, ConstantInt::get(v->getType(), m)); }

Value* IrGen::shr_per_seg(Value* v, const std::vector<int>& shifts, int mask) {
  const unsigned n = lanes(v);
  bool uniform = true;
  for (int s : shifts) uniform &= s == shifts[0];
  if (uniform) return and8(lshr8(v, shifts[0]), mask);
  // 16-bit lanes with per-lane shift amounts (vpsrlvw); bits crossing between the two bytes of a
  // lane are cleared by the mask.
  const unsigned seg = n / unsigned(shifts.size());
  std::vector<int64_t> sh(n / 2);
  for (unsigned i = 0; i < n / 2; ++i) sh[i] = shifts[(2 * i) / seg];
  Value* w = B.CreateBitCast(v, vt(i16, n / 2));
  w = B.CreateLShr(w, const_vec(i16, sh));
  return and8(B.CreateBitCast(w, vt(i8, n)), mask);
}

Value* IrGen::bits_select(Value* bits, const std::vector<int64_t>& masks, int value) {
  const unsigned n = lanes(bits);
  Value* t = B.CreateAnd(bits, const_vec(i8, masks));
  Value* z = zero(vt(i8, n));
  return B.CreateSelect(B.CreateICmpNE(t, z), splat(i8, n, value), z);
}

AllocaInst* IrGen::var(Type* t, Value* init, const std::string& name) {
  IRBuilder<> eb(&F->getEntryBlock(), F->getEntryBlock().begin());
  AllocaInst* a = eb.CreateAlloca(t, nullptr, name);
  if (init) B.CreateStore(init, a);
  return a;
}

void IrGen::for_range(Value* begin, Value* end, Value* step, const std::function<void(Value*)>& body) {
  AllocaInst* iv = var(begin->getType(), begin, "i");
  BasicBlock* head = block("for.head");
  BasicBlock* bb = block("for.body");
  BasicBlock* exit = block("for.exit");
  B.CreateBr(head);
  B.SetInsertPoint(head);
  Value* i = get(iv);
  B.CreateCondBr(B.CreateICmpSLT(i, end), bb, exit);
  B.SetInsertPoint(bb);
  body(i);
  set(iv, B.CreateAdd(i, step));
  mark_loop(B.CreateBr(head));
  B.SetInsertPoint(exit);
}

// Loops are written as meant: no vectorizing or unrolling of them by the optimizer (which only
// grows code and compile time: the bodies are already vector code, unrolled by k_unroll).
void IrGen::mark_loop(Instruction* latch_br) {
  MDNode* no_vec = MDNode::get(C, {MDString::get(C, "llvm.loop.vectorize.enable"),
                                   ConstantAsMetadata::get(ConstantInt::getFalse(C))});
  MDNode* no_unroll = MDNode::get(C, {MDString::get(C, "llvm.loop.unroll.disable")});
  MDNode* no_il = MDNode::get(C, {MDString::get(C, "llvm.loop.interleave.count"),
                                  ConstantAsMetadata::get(ConstantInt::get(i32, 1))});
  SmallVector<Metadata*, 4> ops = {nullptr, no_vec, no_unroll, no_il};
  MDNode* loop = MDNode::getDistinct(C, ops);
  loop->replaceOperandWith(0, loop);
  latch_br->setMetadata(LLVMContext::MD_loop, loop);
}

void IrGen::while_loop(const std::function<Value*()>& cond, const std::function<void()>& body) {
  BasicBlock* head = block("while.head");
  BasicBlock* bb = block("while.body");
  BasicBlock* exit = block("while.exit");
  B.CreateBr(head);
  B.SetInsertPoint(head);
  B.CreateCondBr(cond(), bb, exit);
  B.SetInsertPoint(bb);
  body();
  mark_loop(B.CreateBr(head));
  B.SetInsertPoint(exit);
}

void IrGen::if_then(Value* cond, const std::function<void()>& then_fn, const std::function<void()>& else_fn) {
  BasicBlock* tb = block("if.then");
  BasicBlock* eb = else_fn ? block("if.else") : nullptr;
  BasicBlock* done = block("if.end");
  B.CreateCondBr(cond, tb, eb ? eb : done);
  B.SetInsertPoint(tb);
  then_fn();
  B.CreateBr(done);
  if (eb) {
    B.SetInsertPoint(eb);
    else_fn();
    B.CreateBr(done);
  }
  B.SetInsertPoint(done);
}

// ---- f16 / bf16. With F16C the hardware conversion is exact (f16 -> f32 always is); without it,
// the integer algorithm of support/fp16.h, so no libcall is ever needed.
Value* IrGen::f16_to_f32(Value* h) {
  Type* ht = h->getType();
  const bool vec = ht->isVectorTy();
  const unsigned n = vec ? lanes(h) : 1;
  auto I = [&](uint32_t v) -> Value* { return vec ? splat(i32, n, v) : (Value*)ci32(int64_t(v)); };
  auto FT = [&]() -> Type* { return vec ? (Type*)vt(f32, n) : f32; };
  if (T.f16c) {
    Type* half = Type::getHalfTy(C);
    return B.CreateFPExt(B.CreateBitCast(h, vec ? (Type*)vt(half, n) : half), FT());
  }
  Value* w = B.CreateShl(B.CreateZExt(h, vec ? (Type*)vt(i32, n) : i32), I(16));
  Value* sign = B.CreateAnd(w, I(0x80000000u));
  Value* two_w = B.CreateAdd(w, w);
  Value* norm = B.CreateFMul(B.CreateBitCast(B.CreateAdd(B.CreateLShr(two_w, I(4)), I(0xE0u << 23)), FT()),
                             B.CreateBitCast(I(0x7800000u), FT()));
  Value* denorm = B.CreateFSub(B.CreateBitCast(B.CreateOr(B.CreateLShr(two_w, I(17)), I(126u << 23)), FT()),
                               vec ? (Value*)splatf(n, 0.5) : (Value*)cf32(0.5));
  Value* is_denorm = B.CreateICmpULT(two_w, I(1u << 27));
  Value* bits = B.CreateSelect(is_denorm, B.CreateBitCast(denorm, w->getType()), B.CreateBitCast(norm, w->getType()));
  return B.CreateBitCast(B.CreateOr(sign, bits), FT());
}

Value* IrGen::f32_to_f16(Value* f) {
  // Exactly support/fp16.h's f32_to_fp16 (round to nearest even, its NaN encoding), lane-wise for
  // vectors, so activations rounded here match the reference bit for bit.
  const bool vec = f->getType()->isVectorTy();
  const unsigned n = vec ? lanes(f) : 1;
  auto I = [&](uint32_t v) -> Value* { return vec ? splat(i32, n, v) : (Value*)ci32(int64_t(v)); };
  Type* ft = vec ? (Type*)vt(f32, n) : f32;
  Value* base = B.CreateFMul(B.CreateFMul(B.CreateUnaryIntrinsic(Intrinsic::fabs, f), B.CreateBitCast(I(0x77800000), ft)),
                             B.CreateBitCast(I(0x08800000), ft));
  Value* w = B.CreateBitCast(f, I(0)->getType());
  Value* shl1_w = B.CreateAdd(w, w);
  Value* sign = B.CreateAnd(w, I(0x80000000u));
  Value* bias = B.CreateAnd(shl1_w, I(0xFF000000u));
  bias = B.CreateSelect(B.CreateICmpULT(bias, I(0x71000000)), I(0x71000000), bias);
  base = B.CreateFAdd(B.CreateBitCast(B.CreateAdd(B.CreateLShr(bias, I(1)), I(0x07800000)), ft), base);
  Value* bits = B.CreateBitCast(base, I(0)->getType());
  Value* exp_bits = B.CreateAnd(B.CreateLShr(bits, I(13)), I(0x7C00));
  Value* mant_bits = B.CreateAnd(bits, I(0xFFF));
  Value* nonsign = B.CreateAdd(exp_bits, mant_bits);
  Value* is_nan = B.CreateICmpUGT(shl1_w, I(0xFF000000u));
  Value* r = B.CreateOr(B.CreateLShr(sign, I(16)), B.CreateSelect(is_nan, I(0x7E00), nonsign));
  return B.CreateTrunc(r, vec ? (Type*)vt(i16, n) : i16);
}

Value* IrGen::f32_to_bf16(Value* f) {
  // support/fp16.h's f32_to_bf16: round to nearest even, NaNs quieted.
  const bool vec = f->getType()->isVectorTy();
  const unsigned n = vec ? lanes(f) : 1;
  auto I = [&](uint32_t v) -> Value* { return vec ? splat(i32, n, v) : (Value*)ci32(int64_t(v)); };
  Value* u = B.CreateBitCast(f, I(0)->getType());
  Value* is_nan = B.CreateICmpUGT(B.CreateAnd(u, I(0x7fffffffu)), I(0x7f800000u));
  Value* rounded = B.CreateLShr(B.CreateAdd(u, B.CreateAdd(I(0x7fffu), B.CreateAnd(B.CreateLShr(u, I(16)), I(1)))), I(16));
  Value* r = B.CreateSelect(is_nan, B.CreateOr(B.CreateLShr(u, I(16)), I(64)), rounded);
  return B.CreateTrunc(r, vec ? (Type*)vt(i16, n) : i16);
}

Value* IrGen::bf16_to_f32(Value* h) {
  const bool vec = h->getType()->isVectorTy();
  const unsigned n = vec ? lanes(h) : 1;
  Value* w = B.CreateShl(B.CreateZExt(h, vec ? (Type*)vt(i32, n) : i32), vec ? (Value*)splat(i32, n, 16) : ci32(16));
  return B.CreateBitCast(w, vec ? (Type*)vt(f32, n) : f32);
}

// ---- Intrinsics.
Value* IrGen::intrinsic(Intrinsic::ID id, const std::vector<Value*>& args, const std::vector<Type*>& overload) {
  Function* fn = Intrinsic::getDeclaration(&M, id, overload);
  FunctionType* ft = fn->getFunctionType();
  std::vector<Value*> a;
  for (size_t i = 0; i < args.size(); ++i) {
    Value* v = args[i];
    if (v->getType() != ft->getParamType(unsigned(i))) v = B.CreateBitCast(v, ft->getParamType(unsigned(i)));
    a.push_back(v);
  }
  return B.CreateCall(fn, a);
}

Value* IrGen::dpbusd(Value* acc, Value* u8, Value* s8) {
  const unsigned n = lanes(acc);
  auto id = n == 16 ? Intrinsic::x86_avx512_vpdpbusd_512 : Intrinsic::x86_avx512_vpdpbusd_256;
  return intrinsic(id, {acc, u8, s8});
}

Value* IrGen::dpwssd(Value* acc, Value* a16, Value* b16) {
  const unsigned n = lanes(acc);
  auto id = n == 16 ? Intrinsic::x86_avx512_vpdpwssd_512 : Intrinsic::x86_avx512_vpdpwssd_256;
  return intrinsic(id, {acc, a16, b16});
}

Value* IrGen::maddubs(Value* u8, Value* s8) {
  const unsigned n = lanes(u8);
  if (n == 64) return intrinsic(Intrinsic::x86_avx512_pmaddubs_w_512, {u8, s8});
  if (n == 32) return intrinsic(Intrinsic::x86_avx2_pmadd_ub_sw, {u8, s8});
  fail("maddubs: unsupported width {}", n);
}

Value* IrGen::maddwd(Value* a16, Value* b16) {
  const unsigned n = lanes(a16);
  if (n == 32) return intrinsic(Intrinsic::x86_avx512_pmaddw_d_512, {a16, b16});
  if (n == 16) return intrinsic(Intrinsic::x86_avx2_pmadd_wd, {a16, b16});
  if (n == 8) return intrinsic(Intrinsic::x86_sse2_pmadd_wd, {a16, b16});
  fail("maddwd: unsupported width {}", n);
}

Value* IrGen::sum2_generic(Value* v) {
  const unsigned n = lanes(v) / 2;
  std::vector<int> e(n), o(n);
  for (unsigned i = 0; i < n; ++i) e[i] = int(2 * i), o[i] = int(2 * i + 1);
  return B.CreateAdd(shuffle(v, e), shuffle(v, o));
}

Value* IrGen::concat_all(std::vector<Value*> parts) {
  while (parts.size() > 1) {
    std::vector<Value*> next;
    for (size_t i = 0; i + 1 < parts.size(); i += 2) next.push_back(concat(parts[i], parts[i + 1]));
    if (parts.size() % 2) fail("concat_all: the number of parts must be a power of two");
    parts = std::move(next);
  }
  return parts[0];
}

std::vector<Value*> IrGen::transpose16(const std::vector<Value*>& rows) {
  const unsigned D = lanes(rows[0]);
  std::vector<Value*> r;
  if (D == 16) {
    r = rows;
  } else if (D == 8) {
    for (unsigned k = 0; k < 8; ++k) r.push_back(concat(rows[k], rows[k + 8]));
  } else {
    fail("transpose16: unsupported width {}", D);
  }
  // Block-swap transpose: at distance h, rows i and i + h exchange their off-diagonal h-blocks. With
  // D = 8 it runs within each 256-bit half (row pairs were concatenated above).
  for (unsigned h = D / 2; h >= 1; h /= 2) {
    for (unsigned i = 0; i < D; ++i) {
      if (i & h) continue;
      std::vector<int> m0(16), m1(16);
      for (unsigned c = 0; c < 16; ++c) {
        const unsigned cc = c % D;
        m0[c] = int((cc & h) == 0 ? c : 16 + c - h);
        m1[c] = int((cc & h) == 0 ? c + h : 16 + c);
      }
      Value* a = r[i];
      Value* b = r[i + h];
      r[i] = B.CreateShuffleVector(a, b, m0);
      r[i + h] = B.CreateShuffleVector(a, b, m1);
    }
  }
  return r;
}

Value* IrGen::vec_of(const std::vector<Value*>& scalars) {
  Value* v = PoisonValue::get(vt(scalars[0]->getType(), unsigned(scalars.size())));
  for (size_t i = 0; i < scalars.size(); ++i) v = B.CreateInsertElement(v, scalars[i], uint64_t(i));
  return v;
}

Value* IrGen::madd16(Value* a16, Value* b16) {
  const unsigned n = lanes(a16);
  if (T.avx2 && n == 16) return maddwd(a16, b16);
  if (has512 && n == 32) return maddwd(a16, b16);
  if (x86 && n % 8 == 0) {
    std::vector<Value*> parts;
    for (unsigned i = 0; i < n; i += 8) parts.push_back(maddwd(slice(a16, i, 8), slice(b16, i, 8)));
    return concat_all(parts);
  }
  Value* p = B.CreateMul(B.CreateSExt(a16, vt(i32, n)), B.CreateSExt(b16, vt(i32, n)));
  return sum2_generic(p);
}

}  // namespace nibble::cpu::detail
