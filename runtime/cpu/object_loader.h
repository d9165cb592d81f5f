// Loads relocatable ELF object code (what `nibble compile` stored in a plan) into executable memory:
// a small static linker for x86-64, so running a plan needs no compiler and no LLVM. Sections are
// copied into one mapping (code, then read-only data, then writable data, each page-aligned),
// relocations applied, then code is made read+execute and read-only data read-only.
//
// Supported: ELF64 little-endian x86-64 ET_REL objects with relocations R_X86_64_64, PC32, PLT32,
// 32, 32S, PC64, GOTPCREL(X); undefined symbols resolve against the other objects' globals, then
// the process (memcpy, libm, ...), through stubs and a local GOT. Anything else is refused with the
// object, section and relocation named.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace nibble::rt {

class LoadedCode {
 public:
  // `what` names the objects in errors (e.g. "plan.nplan: code object 2"). Throws nibble::Error.
  static std::unique_ptr<LoadedCode> load(const std::vector<std::span<const uint8_t>>& objects,
                                          const std::string& what);
  ~LoadedCode();
  LoadedCode(const LoadedCode&) = delete;
  LoadedCode& operator=(const LoadedCode&) = delete;

  void* find(const std::string& symbol) const;  // a global symbol, or nullptr
  size_t code_bytes() const { return size_; }

 private:
  LoadedCode() = default;
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, void*> symbols_;
};

}  // namespace nibble::rt
