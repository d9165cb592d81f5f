#include "runtime/cpu/object_loader.h"

#include <dlfcn.h>
#include <elf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "support/error.h"

namespace nibble::rt {

namespace {

uint64_t align_up(uint64_t x, uint64_t a) { return a <= 1 ? x : (x + a - 1) / a * a; }

// One object's view: headers checked, sections placed.
struct Object {
  std::span<const uint8_t> bytes;
  std::string what;
  const Elf64_Ehdr* eh = nullptr;
  std::vector<Elf64_Shdr> sh;
  std::vector<int64_t> placed;  // per section: offset in the mapping, or -1
  const Elf64_Shdr* symtab = nullptr;

  template <class T>
  const T* at(uint64_t off, uint64_t count, const char* thing) const {
    if (off > bytes.size() || count > (bytes.size() - off) / sizeof(T))
      fail("{}: {} at offset {} ({} entries) runs past the object's {} bytes", what, thing, off, count, bytes.size());
    return reinterpret_cast<const T*>(bytes.data() + off);
  }
  const char* str(const Elf64_Shdr& strtab, uint32_t off) const {
    if (off >= strtab.sh_size) fail("{}: string offset {} outside its table", what, off);
    const char* s = at<char>(strtab.sh_offset, strtab.sh_size, "string table") + off;
    if (!memchr(s, 0, strtab.sh_size - off)) fail("{}: unterminated string at offset {}", what, off);
    return s;
  }
};

void parse_headers(Object& o) {
  if (o.bytes.size() < sizeof(Elf64_Ehdr) || std::memcmp(o.bytes.data(), ELFMAG, SELFMAG) != 0)
    fail("{}: not an ELF object", o.what);
  o.eh = reinterpret_cast<const Elf64_Ehdr*>(o.bytes.data());
  if (o.eh->e_ident[EI_CLASS] != ELFCLASS64 || o.eh->e_ident[EI_DATA] != ELFDATA2LSB)
    fail("{}: not a 64-bit little-endian ELF object", o.what);
  if (o.eh->e_type != ET_REL) fail("{}: ELF type {}, expected a relocatable object", o.what, o.eh->e_type);
#if defined(__x86_64__)
  if (o.eh->e_machine != EM_X86_64)
    fail("{}: object code for ELF machine {}, this process is x86-64: recompile the plan here", o.what, o.eh->e_machine);
#else
  fail("{}: this runtime loads x86-64 object code only", o.what);
#endif
  if (o.eh->e_shentsize != sizeof(Elf64_Shdr)) fail("{}: section header size {}", o.what, o.eh->e_shentsize);
  const Elf64_Shdr* s = o.at<Elf64_Shdr>(o.eh->e_shoff, o.eh->e_shnum, "section headers");
  o.sh.assign(s, s + o.eh->e_shnum);
  o.placed.assign(o.sh.size(), -1);
  for (const Elf64_Shdr& h : o.sh) {
    if (h.sh_type == SHT_SYMTAB) {
      if (o.symtab) fail("{}: two symbol tables", o.what);
      if (h.sh_link >= o.sh.size()) fail("{}: symbol table links to section {}", o.what, h.sh_link);
      o.symtab = &h;
    }
    if (h.sh_type != SHT_NOBITS && h.sh_size) o.at<uint8_t>(h.sh_offset, h.sh_size, "section");
    if (h.sh_addralign > 4096) fail("{}: section alignment {} over a page", o.what, h.sh_addralign);
  }
}

// Groups of the mapping, each page-aligned: 0 code (r-x), 1 read-only data (r--), 2 data (rw-).
int group_of(const Elf64_Shdr& h) {
  if (h.sh_flags & SHF_EXECINSTR) return 0;
  return (h.sh_flags & SHF_WRITE) ? 2 : 1;
}

}  // namespace

std::unique_ptr<LoadedCode> LoadedCode::load(const std::vector<std::span<const uint8_t>>& objects,
                                             const std::string& what) {
  std::vector<Object> objs(objects.size());
  for (size_t i = 0; i < objects.size(); ++i) {
    objs[i].bytes = objects[i];
    objs[i].what = what + " " + std::to_string(i);
    parse_headers(objs[i]);
  }
  // Count relocations, an upper bound on stubs and GOT entries (16 and 8 bytes each).
  uint64_t n_relocs = 0;
  for (const Object& o : objs)
    for (const Elf64_Shdr& h : o.sh)
      if (h.sh_type == SHT_RELA) n_relocs += h.sh_size / sizeof(Elf64_Rela);
  // Layout.
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  uint64_t group_size[3] = {0, 0, 0};
  std::vector<std::vector<std::pair<size_t, size_t>>> members(3);  // (object, section)
  for (size_t oi = 0; oi < objs.size(); ++oi)
    for (size_t si = 0; si < objs[oi].sh.size(); ++si) {
      const Elf64_Shdr& h = objs[oi].sh[si];
      if (!(h.sh_flags & SHF_ALLOC) || h.sh_size == 0) continue;
      const int g = group_of(h);
      group_size[g] = align_up(group_size[g], std::max<uint64_t>(h.sh_addralign, 1));
      objs[oi].placed[si] = int64_t(group_size[g]);  // relative to its group for now
      members[g].push_back({oi, si});
      group_size[g] += h.sh_size;
    }
  const uint64_t stubs_at = align_up(group_size[0], 16);
  group_size[0] = stubs_at + 16 * n_relocs;
  const uint64_t got_at = align_up(group_size[1], 8);
  group_size[1] = got_at + 8 * n_relocs;
  uint64_t group_base[3], total = 0;
  for (int g = 0; g < 3; ++g) {
    group_base[g] = total;
    total += align_up(std::max<uint64_t>(group_size[g], 1), page);
  }
  void* mem = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) fail("{}: cannot map {} bytes for the code", what, total);
  std::unique_ptr<LoadedCode> lc(new LoadedCode());
  lc->base_ = static_cast<uint8_t*>(mem);
  lc->size_ = total;
  uint8_t* base = lc->base_;
  for (int g = 0; g < 3; ++g)
    for (auto [oi, si] : members[g]) {
      Object& o = objs[oi];
      o.placed[si] += int64_t(group_base[g]);
      const Elf64_Shdr& h = o.sh[si];
      if (h.sh_type != SHT_NOBITS) std::memcpy(base + o.placed[si], o.bytes.data() + h.sh_offset, h.sh_size);
    }

  // Symbols: globals of every object first (for references across objects).
  auto symbols_of = [](const Object& o) -> std::span<const Elf64_Sym> {
    if (!o.symtab) return {};
    return {o.at<Elf64_Sym>(o.symtab->sh_offset, o.symtab->sh_size / sizeof(Elf64_Sym), "symbol table"),
            size_t(o.symtab->sh_size / sizeof(Elf64_Sym))};
  };
  auto address_of = [&](const Object& o, const Elf64_Sym& s) -> uint64_t {
    if (s.st_shndx == SHN_ABS) return s.st_value;
    if (s.st_shndx >= o.sh.size() || o.placed[s.st_shndx] < 0)
      fail("{}: symbol in section {}, which is not loaded", o.what, s.st_shndx);
    return uint64_t(reinterpret_cast<uintptr_t>(base)) + uint64_t(o.placed[s.st_shndx]) + s.st_value;
  };
  for (const Object& o : objs) {
    for (const Elf64_Sym& s : symbols_of(o)) {
      const int bind = ELF64_ST_BIND(s.st_info);
      if ((bind != STB_GLOBAL && bind != STB_WEAK) || s.st_shndx == SHN_UNDEF || s.st_shndx == SHN_COMMON) continue;
      const std::string name = o.str(o.sh[o.symtab->sh_link], s.st_name);
      if (lc->symbols_.count(name) && bind == STB_GLOBAL) fail("{}: symbol '{}' defined twice", o.what, name);
      lc->symbols_[name] = reinterpret_cast<void*>(address_of(o, s));
    }
  }

  uint64_t stubs_used = 0, got_used = 0;
  std::map<uint64_t, uint64_t> stub_for, got_for;  // target address -> stub / GOT entry address
  auto stub = [&](uint64_t target) {
    auto [it, fresh] = stub_for.emplace(target, 0);
    if (fresh) {
      uint8_t* p = base + group_base[0] + stubs_at + 16 * stubs_used++;
      const uint8_t jmp[6] = {0xFF, 0x25, 0, 0, 0, 0};  // jmp *0(%rip): the address follows
      std::memcpy(p, jmp, 6);
      std::memcpy(p + 6, &target, 8);
      it->second = uint64_t(reinterpret_cast<uintptr_t>(p));
    }
    return it->second;
  };
  auto got = [&](uint64_t target) {
    auto [it, fresh] = got_for.emplace(target, 0);
    if (fresh) {
      uint8_t* p = base + group_base[1] + got_at + 8 * got_used++;
      std::memcpy(p, &target, 8);
      it->second = uint64_t(reinterpret_cast<uintptr_t>(p));
    }
    return it->second;
  };

  for (Object& o : objs) {
    std::span<const Elf64_Sym> syms = symbols_of(o);
    for (const Elf64_Shdr& rh : o.sh) {
      if (rh.sh_type == SHT_REL) fail("{}: REL relocations (expected RELA)", o.what);
      if (rh.sh_type != SHT_RELA) continue;
      if (rh.sh_info >= o.sh.size() || o.placed[rh.sh_info] < 0) continue;  // relocates an unloaded section
      const Elf64_Shdr& target = o.sh[rh.sh_info];
      const size_t n = rh.sh_size / sizeof(Elf64_Rela);
      const Elf64_Rela* rel = o.at<Elf64_Rela>(rh.sh_offset, n, "relocations");
      for (size_t r = 0; r < n; ++r) {
        const uint32_t type = ELF64_R_TYPE(rel[r].r_info), si = ELF64_R_SYM(rel[r].r_info);
        if (type == R_X86_64_NONE) continue;
        if (si >= syms.size()) fail("{}: relocation {} names symbol {} of {}", o.what, r, si, syms.size());
        const Elf64_Sym& s = syms[si];
        const int width = (type == R_X86_64_64 || type == R_X86_64_PC64) ? 8 : 4;
        if (rel[r].r_offset > target.sh_size || target.sh_size - rel[r].r_offset < uint64_t(width))
          fail("{}: relocation {} at offset {} outside its section", o.what, r, rel[r].r_offset);
        uint8_t* where = base + o.placed[rh.sh_info] + rel[r].r_offset;
        const uint64_t P = uint64_t(reinterpret_cast<uintptr_t>(where));
        uint64_t S;
        bool external = false;
        if (s.st_shndx == SHN_UNDEF) {
          const std::string name = o.str(o.sh[o.symtab->sh_link], s.st_name);
          void* addr = lc->find(name);
          if (!addr) {
            addr = dlsym(RTLD_DEFAULT, name.c_str());
            external = true;
          }
          if (!addr) fail("{}: undefined symbol '{}'", o.what, name);
          S = uint64_t(reinterpret_cast<uintptr_t>(addr));
        } else {
          S = address_of(o, s);
        }
        const int64_t A = rel[r].r_addend;
        auto put32 = [&](int64_t v, bool is_signed) {
          if (is_signed ? (v < INT32_MIN || v > INT32_MAX) : (v < 0 || v > int64_t(UINT32_MAX)))
            fail("{}: relocation {} (type {}) out of range", o.what, r, type);
          const uint32_t u = uint32_t(v);
          std::memcpy(where, &u, 4);
        };
        switch (type) {
          case R_X86_64_64: {
            const uint64_t v = S + uint64_t(A);
            std::memcpy(where, &v, 8);
            break;
          }
          case R_X86_64_PC64: {
            const uint64_t v = S + uint64_t(A) - P;
            std::memcpy(where, &v, 8);
            break;
          }
          case R_X86_64_PC32:
          case R_X86_64_PLT32: {
            const uint64_t dest = external ? stub(S) : S;
            put32(int64_t(dest + uint64_t(A) - P), true);
            break;
          }
          case R_X86_64_32: put32(int64_t(S + uint64_t(A)), false); break;
          case R_X86_64_32S: put32(int64_t(S + uint64_t(A)), true); break;
          case R_X86_64_GOTPCREL:
          case R_X86_64_GOTPCRELX:
          case R_X86_64_REX_GOTPCRELX: put32(int64_t(got(S) + uint64_t(A) - P), true); break;
          default: fail("{}: relocation type {} is not supported (offset {})", o.what, type, rel[r].r_offset);
        }
      }
    }
  }
  const uint64_t size0 = align_up(std::max<uint64_t>(group_size[0], 1), page);
  const uint64_t size1 = align_up(std::max<uint64_t>(group_size[1], 1), page);
  if (mprotect(base, size0, PROT_READ | PROT_EXEC) != 0 || mprotect(base + size0, size1, PROT_READ) != 0)
    fail("{}: cannot make the code executable", what);
  __builtin___clear_cache(reinterpret_cast<char*>(base), reinterpret_cast<char*>(base + size0));
  return lc;
}

LoadedCode::~LoadedCode() {
  if (base_) munmap(base_, size_);
}

void* LoadedCode::find(const std::string& symbol) const {
  auto it = symbols_.find(symbol);
  return it == symbols_.end() ? nullptr : it->second;
}

}  // namespace nibble::rt
