// Internal to nibble_codegen_cpu: a thin layer over llvm::IRBuilder for the kernel generators:
// byte-offset loads and stores, vector shuffles, structured loops over allocas (mem2reg promotes
// them), exact f16 conversions, and the ISA-specific integer dot products.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/IntrinsicsX86.h>
#include <llvm/IR/Module.h>

#include "codegen/cpu/cpu_jit.h"

namespace nibble::cpu::detail {

// How the integer dot products are computed.
enum class Isa {
  Vnni,     // vpdpbusd / vpdpwssd (AVX512-VNNI with VL, or AVX-VNNI), plus AVX2 / AVX-512BW byte ops
  Avx2,     // pmaddubsw + pmaddwd
  Generic,  // plain LLVM vector ops (sext, mul, add): SSE2 and non-x86 targets
};

class IrGen {
 public:
  IrGen(llvm::Module& m, const HostCpu& target);

  llvm::Module& M;
  llvm::LLVMContext& C;
  llvm::IRBuilder<> B;
  const HostCpu& T;
  Isa isa;
  bool has512;  // 512-bit integer vectors (AVX-512 F+BW) usable
  bool x86;     // x86-64 target (SSE2 at least)
  llvm::Type *i1, *i8, *i16, *i32, *i64, *f32, *ptr, *void_ty;
  llvm::Function* F = nullptr;  // function being emitted

  // ---- Functions.
  llvm::Function* new_function(const std::string& name, llvm::Type* ret, const std::vector<llvm::Type*>& params,
                               bool external, bool wide);
  void begin(llvm::Function* f);  // positions the builder at a fresh entry block of f

  // ---- Types and constants.
  llvm::FixedVectorType* vt(llvm::Type* e, unsigned n) { return llvm::FixedVectorType::get(e, n); }
  llvm::Constant* ci8(int v) { return llvm::ConstantInt::get(i8, uint64_t(int64_t(v)), true); }
  llvm::Constant* ci32(int64_t v) { return llvm::ConstantInt::get(i32, uint64_t(v), true); }
  llvm::Constant* ci64(int64_t v) { return llvm::ConstantInt::get(i64, uint64_t(v), true); }
  llvm::Constant* cf32(double v) { return llvm::ConstantFP::get(f32, v); }
  llvm::Constant* splat(llvm::Type* e, unsigned n, int64_t v) {
    return llvm::ConstantInt::get(vt(e, n), uint64_t(v), true);
  }
  llvm::Constant* splatf(unsigned n, double v) { return llvm::ConstantFP::get(vt(f32, n), v); }
  llvm::Constant* const_vec(llvm::Type* e, const std::vector<int64_t>& v);
  llvm::Value* zero(llvm::Type* t) { return llvm::Constant::getNullValue(t); }

  // ---- Memory (byte offsets, alignment 1).
  llvm::Value* gep(llvm::Value* p, llvm::Value* off) { return B.CreateGEP(i8, p, off); }
  llvm::Value* gep(llvm::Value* p, int64_t off) { return off ? B.CreateGEP(i8, p, ci64(off)) : p; }
  llvm::Value* load(llvm::Type* t, llvm::Value* p, int64_t off = 0);
  void store(llvm::Value* v, llvm::Value* p, int64_t off = 0);
  llvm::Value* load_bytes(llvm::Value* p, int64_t off, unsigned n) { return load(vt(i8, n), p, off); }

  // ---- Vectors.
  llvm::Value* concat(llvm::Value* a, llvm::Value* b);
  llvm::Value* concat_all(std::vector<llvm::Value*> parts);  // a power-of-two count of equal vectors
  // 16 vectors of D (8 or 16) 32-bit lanes -> D vectors of 16 lanes: out[d][i] = rows[i][d].
  std::vector<llvm::Value*> transpose16(const std::vector<llvm::Value*>& rows);
  llvm::Value* vec_of(const std::vector<llvm::Value*>& scalars);  // scalars -> vector
  llvm::Value* slice(llvm::Value* v, unsigned start, unsigned n);
  llvm::Value* shuffle(llvm::Value* v, const std::vector<int>& mask) { return B.CreateShuffleVector(v, mask); }
  llvm::Value* bcast(llvm::Value* scalar, unsigned n) { return B.CreateVectorSplat(n, scalar); }
  unsigned lanes(llvm::Value* v) const;
  llvm::Value* hadd_f(llvm::Value* v);  // reassociating horizontal sum of a float vector
  llvm::Value* hadd_i(llvm::Value* v) { return B.CreateAddReduce(v); }
  llvm::Value* fmuladd(llvm::Value* a, llvm::Value* b, llvm::Value* c);
  llvm::Value* lshr8(llvm::Value* v, int n);  // per-byte logical shift right
  llvm::Value* shl8(llvm::Value* v, int n);
  llvm::Value* and8(llvm::Value* v, int m);
  // Per-byte shift right where each 32-byte segment of v has its own shift; bytes are then masked
  // with `mask`, which must clear the bits that crossed in from the neighbouring byte.
  llvm::Value* shr_per_seg(llvm::Value* v, const std::vector<int>& shifts, int mask);
  // Bytes of `bits` tested against the constant per-byte masks: `value` where set, else 0.
  llvm::Value* bits_select(llvm::Value* bits, const std::vector<int64_t>& masks, int value);

  // ---- Control flow (builder left after the construct).
  llvm::AllocaInst* var(llvm::Type* t, llvm::Value* init = nullptr, const std::string& name = "");
  llvm::Value* get(llvm::AllocaInst* v) { return B.CreateLoad(v->getAllocatedType(), v); }
  void set(llvm::AllocaInst* v, llvm::Value* x) { B.CreateStore(x, v); }
  void for_range(llvm::Value* begin, llvm::Value* end, llvm::Value* step, const std::function<void(llvm::Value*)>& body);
  void while_loop(const std::function<llvm::Value*()>& cond, const std::function<void()>& body);
  void if_then(llvm::Value* cond, const std::function<void()>& then_fn,
               const std::function<void()>& else_fn = nullptr);
  void mark_loop(llvm::Instruction* latch_br);
  llvm::BasicBlock* block(const std::string& name) { return llvm::BasicBlock::Create(C, name, F); }

  // ---- Numbers.
  llvm::Value* f16_to_f32(llvm::Value* h);  // i16 (or <n x i16>) bits -> f32, exact
  llvm::Value* f32_to_f16(llvm::Value* f);   // f32 (or <n x f32>) -> i16 bits, bit-exact with support/fp16.h
  llvm::Value* bf16_to_f32(llvm::Value* h);
  llvm::Value* f32_to_bf16(llvm::Value* f);  // f32 (or <n x f32>) -> i16 bits, bit-exact with support/fp16.h

  // ---- x86 intrinsics (only when the target has them).
  llvm::Value* intrinsic(llvm::Intrinsic::ID id, const std::vector<llvm::Value*>& args,
                         const std::vector<llvm::Type*>& overload = {});
  llvm::Value* dpbusd(llvm::Value* acc, llvm::Value* u8, llvm::Value* s8);    // <L x i32> += sum4(u8 * s8)
  llvm::Value* dpwssd(llvm::Value* acc, llvm::Value* a16, llvm::Value* b16);  // <L x i32> += sum2(a16 * b16)
  llvm::Value* maddubs(llvm::Value* u8, llvm::Value* s8);                     // <2L x i16> = sat sum2(u8 * s8)
  llvm::Value* maddwd(llvm::Value* a16, llvm::Value* b16);                    // <L x i32> = sum2(a16 * b16)
  llvm::Value* sum2_generic(llvm::Value* v32);  // <2L x i32> -> <L x i32>
  // pmaddwd of two <2n x i16> vectors as <n x i32> on any target (SSE2 pmaddwd pieces on x86).
  llvm::Value* madd16(llvm::Value* a16, llvm::Value* b16);
};

}  // namespace nibble::cpu::detail
