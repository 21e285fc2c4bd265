// A bounds-checked reader for the parts of an ELF file a symbolizer needs:
// PT_LOAD segments, the GNU build ID note and function symbols. Private to
// profiles/. Parsing is pure over a byte image; MappedElfFile supplies that
// image from a read-only mmap of a file. Only 64-bit little-endian ELF (the
// x86_64 and aarch64 hosts sleuth runs on) is supported; anything else is an
// error, never a crash: every offset read from the file is checked against
// the image size first.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sleuth/common/files.h"
#include "sleuth/common/status.h"

namespace sleuth::profiles::internal {

struct LoadSegment {
  uint64_t file_offset = 0;  // p_offset
  uint64_t file_size = 0;    // p_filesz
  uint64_t vaddr = 0;        // p_vaddr
  uint64_t mem_size = 0;     // p_memsz
  bool executable = false;
};

// Function symbols of one file, compact: 16 bytes a symbol plus its name once
// in a shared string pool. Sorted by start, no two with the same start.
// Immutable once built; thread-safe to read.
class SymbolTable {
 public:
  struct Symbol {
    uint64_t start = 0;  // file virtual address (st_value)
    uint32_t size = 0;
    uint32_t name_offset = 0;  // into the pool, NUL-terminated
  };

  // The symbol covering `vaddr`, or nullptr.
  const Symbol* Find(uint64_t vaddr) const;
  std::string_view Name(const Symbol& s) const { return pool_.c_str() + s.name_offset; }
  size_t size() const { return symbols_.size(); }
  bool empty() const { return symbols_.empty(); }
  size_t MemoryBytes() const { return symbols_.capacity() * sizeof(Symbol) + pool_.capacity(); }

 private:
  friend class SymbolTableBuilder;
  std::vector<Symbol> symbols_;
  std::string pool_;
};

// What a symbolizer keeps of one ELF file.
struct ElfInfo {
  bool shared_object = false;  // ET_DYN: a PIE executable or a shared library
  std::vector<LoadSegment> loads;
  std::string build_id;       // lowercase hex; empty when the file has none
  SymbolTable symbols;        // from .symtab when present, else .dynsym
  std::string symbol_source;  // ".symtab", ".dynsym" or "" (for logs and tests)

  // Translates a file offset (pc - mapping start + mapping file offset) to
  // the file's virtual address space, through the PT_LOAD that holds it.
  bool FileOffsetToVaddr(uint64_t file_offset, uint64_t* vaddr) const;
};

struct ElfParseOptions {
  bool want_symbols = true;
};

// Parses an ELF image. Errors say what is wrong with it ("not an ELF file",
// "section headers past the end of the file"...).
Result<ElfInfo> ParseElf(std::string_view image, const ElfParseOptions& options = {});

// Only the symbols of an image (used for separate debug files, whose
// .symtab complements a stripped binary).
Result<SymbolTable> ParseElfSymbols(std::string_view image, std::string* source);

// The hex GNU build ID of an image, or "" if it has no NT_GNU_BUILD_ID note.
Result<std::string> ParseElfBuildId(std::string_view image);

// A read-only private mapping of a whole file. Move-only. The mapping is
// dropped as soon as parsing is done so the host's resident memory does not
// grow by the size of its libraries.
// Note: if another process truncates the file while it is mapped, touching
// the missing pages raises SIGBUS; files that are mapped executable by the
// watched process are not expected to be truncated in place (package
// managers replace them by rename, which keeps the old inode intact).
class MappedElfFile {
 public:
  static Result<MappedElfFile> Open(const std::string& path);
  // Maps an already open descriptor (e.g. from /proc/<pid>/map_files).
  static Result<MappedElfFile> FromFd(ScopedFd fd, const std::string& name);

  MappedElfFile(MappedElfFile&& other) noexcept;
  MappedElfFile& operator=(MappedElfFile&& other) noexcept;
  MappedElfFile(const MappedElfFile&) = delete;
  MappedElfFile& operator=(const MappedElfFile&) = delete;
  ~MappedElfFile();

  std::string_view image() const { return {static_cast<const char*>(addr_), size_}; }
  uint64_t inode() const { return inode_; }

 private:
  MappedElfFile() = default;
  void* addr_ = nullptr;
  size_t size_ = 0;
  uint64_t inode_ = 0;
};

// Demangles an Itanium C++ ABI name ("_ZN3foo3barEv" -> "foo::bar()");
// returns other names unchanged. A "@VERSION" suffix is removed first, and
// GCC's " [clone .constprop.0]"-style suffixes of specialized copies after.
std::string Demangle(std::string_view name);

}  // namespace sleuth::profiles::internal
