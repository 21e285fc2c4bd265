#include "elf_reader.h"

#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the ELF reader reads little-endian files in place");

namespace sleuth::profiles::internal {

namespace {

// Copies a T out of the image at `offset` (the image need not be aligned).
template <typename T>
bool ReadAt(std::string_view image, uint64_t offset, T* out) {
  if (offset > image.size() || image.size() - offset < sizeof(T)) return false;
  std::memcpy(out, image.data() + offset, sizeof(T));
  return true;
}

bool RangeInImage(std::string_view image, uint64_t offset, uint64_t size) {
  return offset <= image.size() && size <= image.size() - offset;
}

// The parts of the headers everything else needs, validated.
struct ElfHeaders {
  Elf64_Ehdr ehdr{};
  std::vector<Elf64_Phdr> phdrs;
  std::vector<Elf64_Shdr> shdrs;  // empty when the file has no section headers
};

Result<ElfHeaders> ReadHeaders(std::string_view image) {
  ElfHeaders h;
  if (!ReadAt(image, 0, &h.ehdr) || std::memcmp(h.ehdr.e_ident, ELFMAG, SELFMAG) != 0) {
    return InvalidArgument("not an ELF file (bad magic or shorter than an ELF header)");
  }
  if (h.ehdr.e_ident[EI_CLASS] != ELFCLASS64) {
    return InvalidArgument("not a 64-bit ELF file (only ELFCLASS64 is supported)");
  }
  if (h.ehdr.e_ident[EI_DATA] != ELFDATA2LSB) {
    return InvalidArgument("not a little-endian ELF file");
  }

  // Section headers first: huge counts are stored in section 0.
  uint64_t shnum = h.ehdr.e_shnum;
  if (h.ehdr.e_shoff != 0) {
    if (h.ehdr.e_shentsize < sizeof(Elf64_Shdr)) {
      return InvalidArgument("ELF section header entries are too small");
    }
    Elf64_Shdr first{};
    if (!ReadAt(image, h.ehdr.e_shoff, &first)) {
      return InvalidArgument("ELF section headers lie past the end of the file (truncated?)");
    }
    if (shnum == 0) shnum = first.sh_size;
    if (shnum > image.size() / h.ehdr.e_shentsize) {
      return InvalidArgument("ELF section header count exceeds the file size (truncated?)");
    }
    h.shdrs.resize(shnum);
    for (uint64_t i = 0; i < shnum; ++i) {
      if (!ReadAt(image, h.ehdr.e_shoff + i * h.ehdr.e_shentsize, &h.shdrs[i])) {
        return InvalidArgument("ELF section headers lie past the end of the file (truncated?)");
      }
    }
  }

  uint64_t phnum = h.ehdr.e_phnum;
  if (phnum == PN_XNUM && !h.shdrs.empty()) phnum = h.shdrs[0].sh_info;
  if (phnum != 0) {
    if (h.ehdr.e_phentsize < sizeof(Elf64_Phdr)) {
      return InvalidArgument("ELF program header entries are too small");
    }
    if (phnum > image.size() / h.ehdr.e_phentsize) {
      return InvalidArgument("ELF program header count exceeds the file size (truncated?)");
    }
    h.phdrs.resize(phnum);
    for (uint64_t i = 0; i < phnum; ++i) {
      if (!ReadAt(image, h.ehdr.e_phoff + i * h.ehdr.e_phentsize, &h.phdrs[i])) {
        return InvalidArgument("ELF program headers lie past the end of the file (truncated?)");
      }
    }
  }
  return h;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

uint64_t AlignUp(uint64_t value, uint64_t align) {
  return (value + align - 1) & ~(align - 1);
}

// Walks the notes in [offset, offset+size) and returns the GNU build ID.
std::string FindBuildIdInNotes(std::string_view image, uint64_t offset, uint64_t size,
                               uint64_t align) {
  if (!RangeInImage(image, offset, size)) return "";
  // Notes are 4-byte aligned, except in segments declared 8-aligned (the
  // x86 property note); the name and the descriptor are padded likewise.
  align = align == 8 ? 8 : 4;
  std::string_view notes = image.substr(offset, size);
  uint64_t pos = 0;
  while (pos + sizeof(Elf64_Nhdr) <= notes.size()) {
    Elf64_Nhdr nhdr;
    std::memcpy(&nhdr, notes.data() + pos, sizeof nhdr);
    uint64_t name_pos = pos + sizeof nhdr;
    uint64_t desc_pos = name_pos + AlignUp(nhdr.n_namesz, align);
    uint64_t next = desc_pos + AlignUp(nhdr.n_descsz, align);
    if (desc_pos > notes.size() || nhdr.n_descsz > notes.size() - desc_pos) break;
    std::string_view name = notes.substr(name_pos, nhdr.n_namesz);
    if (nhdr.n_type == NT_GNU_BUILD_ID && name == std::string_view("GNU\0", 4) &&
        nhdr.n_descsz > 0) {
      return Hex(notes.substr(desc_pos, nhdr.n_descsz));
    }
    if (next <= pos) break;
    pos = next;
  }
  return "";
}

std::string FindBuildId(std::string_view image, const ElfHeaders& h) {
  for (const Elf64_Phdr& p : h.phdrs) {
    if (p.p_type != PT_NOTE) continue;
    std::string id = FindBuildIdInNotes(image, p.p_offset, p.p_filesz, p.p_align);
    if (!id.empty()) return id;
  }
  // Separate debug files and some object files carry the note only as a
  // section.
  for (const Elf64_Shdr& s : h.shdrs) {
    if (s.sh_type != SHT_NOTE) continue;
    std::string id = FindBuildIdInNotes(image, s.sh_offset, s.sh_size, s.sh_addralign);
    if (!id.empty()) return id;
  }
  return "";
}

int LeadingUnderscores(std::string_view name) {
  int n = 0;
  while (n < 2 && n < static_cast<int>(name.size()) && name[n] == '_') ++n;
  return n;
}

}  // namespace

// Collects candidate symbols, then sorts them, keeps one name per address
// and packs the names into the pool.
class SymbolTableBuilder {
 public:
  struct Candidate {
    uint64_t start;
    uint64_t size;
    uint64_t section_end;  // where a zero-sized symbol must stop at the latest
    std::string_view name;
    unsigned char binding;
  };

  void Add(const Candidate& c) { candidates_.push_back(c); }

  SymbolTable Build() {
    std::sort(candidates_.begin(), candidates_.end(), [](const Candidate& a, const Candidate& b) {
      if (a.start != b.start) return a.start < b.start;
      return Better(a, b);
    });
    SymbolTable table;
    size_t pool_bytes = 0;
    size_t unique = 0;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      if (i > 0 && candidates_[i].start == candidates_[i - 1].start) continue;
      pool_bytes += candidates_[i].name.size() + 1;
      ++unique;
    }
    table.symbols_.reserve(unique);
    table.pool_.reserve(pool_bytes);
    for (size_t i = 0; i < candidates_.size(); ++i) {
      const Candidate& c = candidates_[i];
      if (i > 0 && c.start == candidates_[i - 1].start) continue;  // a worse alias
      uint64_t size = c.size;
      if (size == 0) {
        // Hand-written assembly often has no size: let it run to the next
        // symbol, but never past the end of its section.
        uint64_t end = c.section_end;
        for (size_t j = i + 1; j < candidates_.size(); ++j) {
          if (candidates_[j].start > c.start) {
            end = std::min(end, candidates_[j].start);
            break;
          }
        }
        size = end > c.start ? end - c.start : 0;
      }
      if (size == 0) continue;
      SymbolTable::Symbol s;
      s.start = c.start;
      s.size =
          static_cast<uint32_t>(std::min<uint64_t>(size, std::numeric_limits<uint32_t>::max()));
      s.name_offset = static_cast<uint32_t>(table.pool_.size());
      table.pool_.append(c.name);
      table.pool_.push_back('\0');
      table.symbols_.push_back(s);
    }
    candidates_.clear();
    candidates_.shrink_to_fit();
    return table;
  }

 private:
  // Which of two names for the same address to show: a global one over a
  // local one, "getpid" over "__getpid", then the shorter.
  static bool Better(const Candidate& a, const Candidate& b) {
    bool a_visible = a.binding != STB_LOCAL, b_visible = b.binding != STB_LOCAL;
    if (a_visible != b_visible) return a_visible;
    int a_under = LeadingUnderscores(a.name), b_under = LeadingUnderscores(b.name);
    if (a_under != b_under) return a_under < b_under;
    if (a.binding != b.binding) return a.binding == STB_GLOBAL;
    if (a.name.size() != b.name.size()) return a.name.size() < b.name.size();
    return a.name < b.name;
  }

  std::vector<Candidate> candidates_;
};

const SymbolTable::Symbol* SymbolTable::Find(uint64_t vaddr) const {
  auto it = std::upper_bound(symbols_.begin(), symbols_.end(), vaddr,
                             [](uint64_t v, const Symbol& s) { return v < s.start; });
  if (it == symbols_.begin()) return nullptr;
  --it;
  if (vaddr - it->start < it->size) return &*it;
  return nullptr;
}

bool ElfInfo::FileOffsetToVaddr(uint64_t file_offset, uint64_t* vaddr) const {
  for (const LoadSegment& seg : loads) {
    if (file_offset >= seg.file_offset && file_offset - seg.file_offset < seg.file_size) {
      *vaddr = file_offset - seg.file_offset + seg.vaddr;
      return true;
    }
  }
  return false;
}

namespace {

// Reads the function symbols of one SHT_SYMTAB or SHT_DYNSYM section.
Status ReadSymbolSection(std::string_view image, const ElfHeaders& h, const Elf64_Shdr& symtab,
                         SymbolTableBuilder* builder, size_t* added) {
  if (symtab.sh_entsize < sizeof(Elf64_Sym)) {
    return InvalidArgument("ELF symbol table entries are too small");
  }
  if (!RangeInImage(image, symtab.sh_offset, symtab.sh_size)) {
    return InvalidArgument("ELF symbol table lies past the end of the file (truncated?)");
  }
  if (symtab.sh_link >= h.shdrs.size()) {
    return InvalidArgument("ELF symbol table names a string table that does not exist");
  }
  const Elf64_Shdr& strtab = h.shdrs[symtab.sh_link];
  if (!RangeInImage(image, strtab.sh_offset, strtab.sh_size)) {
    return InvalidArgument("ELF string table lies past the end of the file (truncated?)");
  }
  std::string_view strings = image.substr(strtab.sh_offset, strtab.sh_size);

  uint64_t count = symtab.sh_size / symtab.sh_entsize;
  for (uint64_t i = 0; i < count; ++i) {
    Elf64_Sym sym;
    if (!ReadAt(image, symtab.sh_offset + i * symtab.sh_entsize, &sym)) break;
    unsigned char type = ELF64_ST_TYPE(sym.st_info);
    if (type != STT_FUNC && type != STT_GNU_IFUNC) continue;
    if (sym.st_shndx == SHN_UNDEF || sym.st_shndx >= SHN_LORESERVE) continue;
    if (sym.st_value == 0 || sym.st_name == 0 || sym.st_name >= strings.size()) continue;
    std::string_view name = strings.substr(sym.st_name);
    name = name.substr(0, name.find('\0'));
    name = name.substr(0, name.find('@'));  // "memcpy@@GLIBC_2.14" -> "memcpy"
    if (name.empty()) continue;
    uint64_t section_end = std::numeric_limits<uint64_t>::max();
    if (sym.st_shndx < h.shdrs.size()) {
      const Elf64_Shdr& section = h.shdrs[sym.st_shndx];
      section_end = section.sh_addr + section.sh_size;
    }
    builder->Add({sym.st_value, sym.st_size, section_end, name, ELF64_ST_BIND(sym.st_info)});
    ++*added;
  }
  return Status::Ok();
}

Result<SymbolTable> ReadSymbols(std::string_view image, const ElfHeaders& h, std::string* source) {
  source->clear();
  // .symtab names static functions too; .dynsym only the exported ones.
  for (uint32_t wanted : {SHT_SYMTAB, SHT_DYNSYM}) {
    SymbolTableBuilder builder;
    size_t added = 0;
    for (const Elf64_Shdr& s : h.shdrs) {
      if (s.sh_type != wanted) continue;
      SLEUTH_RETURN_IF_ERROR(ReadSymbolSection(image, h, s, &builder, &added));
    }
    if (added > 0) {
      *source = wanted == SHT_SYMTAB ? ".symtab" : ".dynsym";
      return builder.Build();
    }
  }
  return SymbolTable();
}

}  // namespace

Result<ElfInfo> ParseElf(std::string_view image, const ElfParseOptions& options) {
  SLEUTH_ASSIGN_OR_RETURN(ElfHeaders h, ReadHeaders(image));
  ElfInfo info;
  info.shared_object = h.ehdr.e_type == ET_DYN;
  for (const Elf64_Phdr& p : h.phdrs) {
    if (p.p_type != PT_LOAD) continue;
    info.loads.push_back({p.p_offset, p.p_filesz, p.p_vaddr, p.p_memsz, (p.p_flags & PF_X) != 0});
  }
  info.build_id = FindBuildId(image, h);
  if (options.want_symbols) {
    SLEUTH_ASSIGN_OR_RETURN(info.symbols, ReadSymbols(image, h, &info.symbol_source));
  }
  return info;
}

Result<SymbolTable> ParseElfSymbols(std::string_view image, std::string* source) {
  SLEUTH_ASSIGN_OR_RETURN(ElfHeaders h, ReadHeaders(image));
  return ReadSymbols(image, h, source);
}

Result<std::string> ParseElfBuildId(std::string_view image) {
  SLEUTH_ASSIGN_OR_RETURN(ElfHeaders h, ReadHeaders(image));
  return FindBuildId(image, h);
}

Result<MappedElfFile> MappedElfFile::Open(const std::string& path) {
  SLEUTH_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(path, O_RDONLY));
  return FromFd(std::move(fd), path);
}

Result<MappedElfFile> MappedElfFile::FromFd(ScopedFd fd, const std::string& name) {
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("cannot stat " + name, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(name + " is not a regular file");
  if (st.st_size <= 0) return InvalidArgument(name + " is empty");
  void* addr =
      ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (addr == MAP_FAILED) return ErrnoStatus("cannot mmap " + name, errno);
  MappedElfFile file;
  file.addr_ = addr;
  file.size_ = static_cast<size_t>(st.st_size);
  file.inode_ = st.st_ino;
  return file;
}

MappedElfFile::MappedElfFile(MappedElfFile&& other) noexcept
    : addr_(other.addr_), size_(other.size_), inode_(other.inode_) {
  other.addr_ = nullptr;
  other.size_ = 0;
}

MappedElfFile& MappedElfFile::operator=(MappedElfFile&& other) noexcept {
  if (this != &other) {
    if (addr_ != nullptr) ::munmap(addr_, size_);
    addr_ = other.addr_;
    size_ = other.size_;
    inode_ = other.inode_;
    other.addr_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

MappedElfFile::~MappedElfFile() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
}

std::string Demangle(std::string_view name) {
  name = name.substr(0, name.find('@'));
  if (name.size() < 2 || name[0] != '_' || name[1] != 'Z') return std::string(name);
  std::string mangled(name);
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  if (status != 0 || demangled == nullptr) {
    std::free(demangled);
    return mangled;
  }
  std::string out(demangled);
  std::free(demangled);
  // GCC's specialized copies ("f(int) [clone .constprop.0] [clone .isra.0]")
  // are the same source function: one name, so their samples add up.
  size_t clone = out.find(" [clone ");
  if (clone != std::string::npos) out.resize(clone);
  return out;
}

}  // namespace sleuth::profiles::internal
