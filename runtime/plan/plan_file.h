// The container of an executable plan (.nplan): a header, a section table and named sections, each
// checksummed. Knows nothing of what the sections hold (see docs/plans.md for the layout).
//
//   offset 0   header (32 bytes): magic "NIBPLAN\0", u32 format version, u32 section count,
//              u64 file size, u64 checksum of the header's first 24 bytes and the section table
//   offset 32  section table: per section 48 bytes: name (16, NUL-padded), u64 offset, u64 size,
//              u64 checksum of the bytes, u32 flags, u32 alignment
//   then       the sections, each at a multiple of its alignment (4096 for weights, so they map)
//
// All integers little-endian. A reader refuses a file whose magic, version, size, table or any
// checksummed section does not check out, naming the file, the section and what was wrong.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "support/mapped_file.h"

namespace nibble::rt {

inline constexpr char kPlanMagic[8] = {'N', 'I', 'B', 'P', 'L', 'A', 'N', '\0'};
inline constexpr uint32_t kPlanFormatVersion = 1;
inline constexpr uint32_t kSectionLazyChecksum = 1u << 0;  // verified only on request (weights)

// 64-bit checksum (four 8-byte lanes, multiply-rotate mixing), incremental.
class Checksum {
 public:
  void update(const void* data, size_t n);
  void update_zeros(size_t n);
  uint64_t finish() const;
  static uint64_t of(const void* data, size_t n);

 private:
  void round(const uint8_t* block32);
  uint64_t lanes_[4] = {0x9E3779B185EBCA87ull, 0xC2B2AE3D27D4EB4Full, 0x165667B19E3779F9ull, 0x27D4EB2F165667C5ull};
  uint8_t buf_[32] = {};
  size_t buffered_ = 0;
  uint64_t total_ = 0;
};

struct SectionInfo {
  std::string name;
  uint64_t offset = 0, size = 0, checksum = 0;
  uint32_t flags = 0, alignment = 1;
};

class PlanFile {
 public:
  // Maps and checks the file: header, table, and the checksum of every section except lazy ones
  // (all of them with verify_lazy). Throws nibble::Error naming the path and what is wrong.
  static std::unique_ptr<PlanFile> open(const std::string& path, bool verify_lazy = false);
  // Whether the file starts with the plan magic (false for an unreadable or short file).
  static bool has_magic(const std::string& path);

  const std::string& path() const { return map_.path(); }
  const std::vector<SectionInfo>& sections() const { return sections_; }
  bool has(const std::string& name) const;
  std::span<const uint8_t> section(const std::string& name) const;  // throws when absent
  std::string section_text(const std::string& name) const;
  // Checks a lazy section's checksum now (weights: --verify-weights).
  void verify(const std::string& name) const;
  uint64_t file_size() const { return map_.size(); }

 private:
  MappedFile map_;
  std::vector<SectionInfo> sections_;
};

// Builds a plan file. Sections are written in the order added; pieces appended to a section keep
// their alignment inside it. Appended spans are referenced, not copied: they must outlive write().
class PlanWriter {
 public:
  void begin_section(const std::string& name, uint32_t flags = 0, uint32_t alignment = 64);
  // Returns the piece's offset from the start of the current section.
  uint64_t append(std::span<const uint8_t> bytes, uint32_t alignment = 1);
  uint64_t append_copy(std::span<const uint8_t> bytes, uint32_t alignment = 1);
  uint64_t append_text(const std::string& text) {
    return append_copy({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  }
  // Writes to a temporary file beside `path`, then renames it into place.
  void write(const std::string& path) const;

 private:
  struct Piece {
    uint64_t offset;  // within the section
    std::span<const uint8_t> bytes;
  };
  struct Section {
    std::string name;
    uint32_t flags = 0, alignment = 64;
    uint64_t size = 0;
    std::vector<Piece> pieces;
  };
  std::vector<Section> sections_;
  std::vector<std::unique_ptr<std::vector<uint8_t>>> owned_;
};

}  // namespace nibble::rt
