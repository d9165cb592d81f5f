#include "runtime/plan/plan_file.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "support/error.h"

namespace nibble::rt {

namespace {

constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull, kP2 = 0xC2B2AE3D27D4EB4Full, kP3 = 0x165667B19E3779F9ull;
constexpr size_t kHeaderBytes = 32, kEntryBytes = 48, kNameBytes = 16;
constexpr uint32_t kMaxSections = 64;

uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void put64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
void put32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

void Checksum::round(const uint8_t* b) {
  for (int i = 0; i < 4; ++i) lanes_[i] = rotl(lanes_[i] + load64(b + 8 * i) * kP2, 31) * kP1;
}

void Checksum::update(const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  total_ += n;
  if (buffered_) {
    const size_t take = std::min(n, 32 - buffered_);
    std::memcpy(buf_ + buffered_, p, take);
    buffered_ += take, p += take, n -= take;
    if (buffered_ < 32) return;
    round(buf_);
    buffered_ = 0;
  }
  for (; n >= 32; p += 32, n -= 32) round(p);
  std::memcpy(buf_, p, n);
  buffered_ = n;
}

void Checksum::update_zeros(size_t n) {
  static const uint8_t zeros[4096] = {};
  for (; n > 0;) {
    const size_t k = std::min(n, sizeof(zeros));
    update(zeros, k);
    n -= k;
  }
}

uint64_t Checksum::finish() const {
  uint64_t h = rotl(lanes_[0], 1) + rotl(lanes_[1], 7) + rotl(lanes_[2], 12) + rotl(lanes_[3], 18);
  h ^= total_ * kP3;
  for (size_t i = 0; i < buffered_; ++i) h = rotl(h ^ (buf_[i] * kP1), 11) * kP2;
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  return h ^ (h >> 32);
}

uint64_t Checksum::of(const void* data, size_t n) {
  Checksum c;
  c.update(data, n);
  return c.finish();
}

bool PlanFile::has_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  return in && in.read(magic, 8) && std::memcmp(magic, kPlanMagic, 8) == 0;
}

std::unique_ptr<PlanFile> PlanFile::open(const std::string& path, bool verify_lazy) {
  auto pf = std::unique_ptr<PlanFile>(new PlanFile());
  pf->map_ = MappedFile(path);
  const uint8_t* d = pf->map_.data();
  const uint64_t size = pf->map_.size();
  if (size < kHeaderBytes) fail("{}: not a nibble plan: {} bytes, shorter than the {}-byte header", path, size, kHeaderBytes);
  if (std::memcmp(d, kPlanMagic, 8) != 0) fail("{}: not a nibble plan (offset 0: expected the magic \"NIBPLAN\")", path);
  const uint32_t version = load32(d + 8), n = load32(d + 12);
  if (version != kPlanFormatVersion)
    fail("{}: plan format version {}, this nibble reads version {}: recompile it from the GGUF with nibble compile",
         path, version, kPlanFormatVersion);
  const uint64_t declared = load64(d + 16);
  if (declared != size)
    fail("{}: truncated or extended: the header says {} bytes, the file has {}: recompile it from the GGUF", path,
         declared, size);
  if (n == 0 || n > kMaxSections) fail("{}: offset 12: section count {} (expected 1..{})", path, n, kMaxSections);
  const uint64_t table_end = kHeaderBytes + uint64_t(n) * kEntryBytes;
  if (table_end > size) fail("{}: offset 32: the section table ({} sections) runs past the end of the file", path, n);
  Checksum hc;
  hc.update(d, 24);
  hc.update(d + kHeaderBytes, table_end - kHeaderBytes);
  if (hc.finish() != load64(d + 24))
    fail("{}: the header or section table is corrupted (checksum mismatch): recompile it from the GGUF", path);
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* e = d + kHeaderBytes + i * kEntryBytes;
    SectionInfo s;
    s.name.assign(reinterpret_cast<const char*>(e), strnlen(reinterpret_cast<const char*>(e), kNameBytes));
    s.offset = load64(e + 16);
    s.size = load64(e + 24);
    s.checksum = load64(e + 32);
    s.flags = load32(e + 40);
    s.alignment = load32(e + 44);
    if (s.offset < table_end || s.offset > size || s.size > size - s.offset)
      fail("{}: section '{}' (offset {}, {} bytes) lies outside the file of {} bytes", path, s.name, s.offset, s.size,
           size);
    if (s.alignment == 0 || s.offset % s.alignment != 0)
      fail("{}: section '{}' at offset {} is not aligned to {}", path, s.name, s.offset, s.alignment);
    pf->sections_.push_back(s);
  }
  for (const SectionInfo& s : pf->sections_)
    if (!(s.flags & kSectionLazyChecksum) || verify_lazy) pf->verify(s.name);
  return pf;
}

bool PlanFile::has(const std::string& name) const {
  for (const SectionInfo& s : sections_)
    if (s.name == name) return true;
  return false;
}

std::span<const uint8_t> PlanFile::section(const std::string& name) const {
  for (const SectionInfo& s : sections_)
    if (s.name == name) return {map_.data() + s.offset, size_t(s.size)};
  fail("{}: the plan has no '{}' section", path(), name);
}

std::string PlanFile::section_text(const std::string& name) const {
  std::span<const uint8_t> b = section(name);
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

void PlanFile::verify(const std::string& name) const {
  for (const SectionInfo& s : sections_) {
    if (s.name != name) continue;
    if (Checksum::of(map_.data() + s.offset, s.size) != s.checksum)
      fail("{}: section '{}' (offset {}, {} bytes) is corrupted (checksum mismatch): recompile it from the GGUF",
           path(), s.name, s.offset, s.size);
    return;
  }
  fail("{}: the plan has no '{}' section", path(), name);
}

void PlanWriter::begin_section(const std::string& name, uint32_t flags, uint32_t alignment) {
  if (name.empty() || name.size() >= kNameBytes) fail("plan writer: section name '{}' must be 1..15 bytes", name);
  for (const Section& s : sections_)
    if (s.name == name) fail("plan writer: section '{}' added twice", name);
  sections_.push_back({name, flags, alignment, 0, {}});
}

uint64_t PlanWriter::append(std::span<const uint8_t> bytes, uint32_t alignment) {
  if (sections_.empty()) fail("plan writer: append before begin_section");
  Section& s = sections_.back();
  const uint64_t off = align_up(s.size, std::max<uint32_t>(alignment, 1));
  s.pieces.push_back({off, bytes});
  s.size = off + bytes.size();
  return off;
}

uint64_t PlanWriter::append_copy(std::span<const uint8_t> bytes, uint32_t alignment) {
  owned_.push_back(std::make_unique<std::vector<uint8_t>>(bytes.begin(), bytes.end()));
  return append(*owned_.back(), alignment);
}

void PlanWriter::write(const std::string& path) const {
  // Layout: every section at a multiple of its alignment after the table.
  const uint64_t table_end = kHeaderBytes + sections_.size() * kEntryBytes;
  std::vector<uint64_t> offsets;
  uint64_t end = table_end;
  for (const Section& s : sections_) {
    const uint64_t off = align_up(end, s.alignment);
    offsets.push_back(off);
    end = off + s.size;
  }
  // Checksums over each section as laid out (padding between pieces is zeros).
  std::vector<uint8_t> head;
  head.insert(head.end(), kPlanMagic, kPlanMagic + 8);
  put32(head, kPlanFormatVersion);
  put32(head, uint32_t(sections_.size()));
  put64(head, end);
  put64(head, 0);  // checksum, below
  for (size_t i = 0; i < sections_.size(); ++i) {
    const Section& s = sections_[i];
    Checksum c;
    uint64_t at = 0;
    for (const Piece& p : s.pieces) {
      c.update_zeros(p.offset - at);
      c.update(p.bytes.data(), p.bytes.size());
      at = p.offset + p.bytes.size();
    }
    char name[kNameBytes] = {};
    std::memcpy(name, s.name.data(), s.name.size());
    head.insert(head.end(), name, name + kNameBytes);
    put64(head, offsets[i]);
    put64(head, s.size);
    put64(head, c.finish());
    put32(head, s.flags);
    put32(head, s.alignment);
  }
  if (head.size() != table_end) fail("plan writer: internal error: table of {} bytes", head.size());
  Checksum hc;
  hc.update(head.data(), 24);
  hc.update(head.data() + kHeaderBytes, head.size() - kHeaderBytes);
  const uint64_t h = hc.finish();
  std::memcpy(head.data() + 24, &h, 8);

  // Unique per process and call: concurrent writers of one path never share a temporary.
  static std::atomic<unsigned> serial{0};
  const std::string tmp = path + ".tmp" + std::to_string(getpid()) + "." + std::to_string(serial++);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("{}: cannot write: {}", tmp, std::strerror(errno));
    out.write(reinterpret_cast<const char*>(head.data()), std::streamsize(head.size()));
    uint64_t at = head.size();
    auto pad_to = [&](uint64_t target) {
      static const char zeros[4096] = {};
      for (; at < target;) {
        const uint64_t k = std::min<uint64_t>(target - at, sizeof(zeros));
        out.write(zeros, std::streamsize(k));
        at += k;
      }
    };
    for (size_t i = 0; i < sections_.size(); ++i) {
      for (const Piece& p : sections_[i].pieces) {
        pad_to(offsets[i] + p.offset);
        out.write(reinterpret_cast<const char*>(p.bytes.data()), std::streamsize(p.bytes.size()));
        at += p.bytes.size();
      }
      pad_to(offsets[i] + sections_[i].size);
    }
    out.close();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      fail("{}: write failed: {}", tmp, std::strerror(errno));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) fail("{}: cannot rename {} into place: {}", path, tmp, ec.message());
}

}  // namespace nibble::rt
