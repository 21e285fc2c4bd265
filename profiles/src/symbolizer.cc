#include "sleuth/profiles/symbolizer.h"

#include <sys/auxv.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "elf_reader.h"
#include "sleuth/common/files.h"

namespace sleuth::profiles {

using internal::ElfInfo;
using internal::MappedElfFile;

// A parsed file, shared by every mapping of it. Immutable once built.
struct Symbolizer::CachedFile {
  std::unique_ptr<ElfInfo> elf;  // null when the file could not be read
  std::string error;
};

namespace {

constexpr std::string_view kVdsoPath = "[vdso]";

std::string CacheKey(const MappingInfo& m) {
  return m.path + '\0' + std::to_string(m.inode) + (m.deleted ? "\0d" : "");
}

std::string HexRange(uint64_t start, uint64_t limit) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%" PRIx64 "-%" PRIx64, start, limit);
  return buf;
}

// Readlink into a string; "" on failure.
std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string out(buf, static_cast<size_t>(n));
  constexpr std::string_view kDeleted = " (deleted)";
  if (out.size() > kDeleted.size() &&
      out.compare(out.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
    out.resize(out.size() - kDeleted.size());
  }
  return out;
}

// If `elf` has no .symtab, looks for the separate debug file that Debian's
// -dbgsym packages install under /usr/lib/debug/.build-id and takes its
// .symtab, which names the same addresses.
void AddDebugFileSymbols(const std::string& root, ElfInfo* elf) {
  if (elf->symbol_source == ".symtab" || elf->build_id.size() < 3) return;
  std::string path = root + "/usr/lib/debug/.build-id/" + elf->build_id.substr(0, 2) + "/" +
                     elf->build_id.substr(2) + ".debug";
  Result<MappedElfFile> debug = MappedElfFile::Open(path);
  if (!debug.ok()) return;
  std::string source;
  Result<internal::SymbolTable> symbols = internal::ParseElfSymbols(debug->image(), &source);
  if (!symbols.ok() || symbols->empty() || source != ".symtab") return;
  elf->symbols = std::move(symbols).value();
  elf->symbol_source = "debug file .symtab";
}

}  // namespace

Symbolizer::Symbolizer(Symbolizer&&) noexcept = default;
Symbolizer& Symbolizer::operator=(Symbolizer&&) noexcept = default;
Symbolizer::~Symbolizer() = default;

Result<Symbolizer> Symbolizer::ForProcess(pid_t pid) {
  Symbolizer s;
  s.pid_ = pid == 0 ? ::getpid() : pid;
  // This process reads its own files directly; another one's through its
  // root, which also covers a process in another mount namespace.
  if (s.pid_ != ::getpid()) s.root_ = "/proc/" + std::to_string(s.pid_) + "/root";
  SLEUTH_RETURN_IF_ERROR(s.Refresh());
  return s;
}

Result<Symbolizer> Symbolizer::ForMapsText(std::string_view maps_text, std::string root) {
  Symbolizer s;
  s.root_ = std::move(root);
  SLEUTH_RETURN_IF_ERROR(s.Load(maps_text));
  return s;
}

Status Symbolizer::Refresh() {
  if (pid_ == 0) return Status::Ok();  // built from fixed maps text: nothing to re-read
  std::string proc = "/proc/" + std::to_string(pid_);
  Result<std::string> maps = ReadFile(proc + "/maps");
  if (!maps.ok()) {
    return maps.status().WithContext("cannot read the mappings of process " + std::to_string(pid_) +
                                     " (has it exited?)");
  }
  exe_path_ = ReadLink(proc + "/exe");
  return Load(*maps);
}

Status Symbolizer::Load(std::string_view maps_text) {
  SLEUTH_ASSIGN_OR_RETURN(std::vector<ProcMapping> all, ParseProcMaps(maps_text));
  mappings_.clear();
  files_.clear();
  main_mapping_index_ = -1;
  // Only executable mappings can hold a pc.
  for (const ProcMapping& p : all) {
    if (!p.executable) continue;
    MappingInfo m;
    m.start = p.start;
    m.limit = p.limit;
    m.file_offset = p.file_offset;
    m.path = p.path;
    m.deleted = p.deleted;
    m.inode = p.inode;
    mappings_.push_back(std::move(m));
  }
  std::sort(mappings_.begin(), mappings_.end(),
            [](const MappingInfo& a, const MappingInfo& b) { return a.start < b.start; });
  for (size_t i = 0; i < mappings_.size() && !exe_path_.empty(); ++i) {
    if (mappings_[i].path == exe_path_) {
      main_mapping_index_ = static_cast<int>(i);
      break;
    }
  }
  files_.assign(mappings_.size(), nullptr);

  // Keep the parsed files that are still mapped, drop the rest so memory
  // stays proportional to what the process maps now.
  std::unordered_map<std::string, std::shared_ptr<const CachedFile>> still_mapped;
  for (size_t i = 0; i < mappings_.size(); ++i) {
    std::string key = CacheKey(mappings_[i]);
    auto it = cache_.find(key);
    if (it == cache_.end()) continue;
    files_[i] = it->second;
    still_mapped.emplace(std::move(key), it->second);
  }
  cache_ = std::move(still_mapped);
  for (size_t i = 0; i < mappings_.size(); ++i) {
    if (files_[i] != nullptr) LoadMapping(i);  // copies build id etc. into the mapping
  }
  return Status::Ok();
}

std::shared_ptr<const Symbolizer::CachedFile> Symbolizer::OpenAndParse(const MappingInfo& m) {
  auto file = std::make_shared<CachedFile>();
  ++files_parsed_;

  // The vDSO has no file; this process can read its image from memory.
  if (m.path == kVdsoPath) {
    uintptr_t vdso = ::getauxval(AT_SYSINFO_EHDR);
    if (pid_ != ::getpid() || vdso != m.start) {
      file->error = "the vdso of another process is not read";
      return file;
    }
    std::string_view image(reinterpret_cast<const char*>(vdso), m.limit - m.start);
    Result<ElfInfo> elf = internal::ParseElf(image);
    if (!elf.ok()) {
      file->error = "vdso: " + elf.status().message();
      return file;
    }
    file->elf = std::make_unique<ElfInfo>(std::move(elf).value());
    return file;
  }
  if (m.path.empty() || m.path[0] != '/' || m.inode == 0) {
    file->error = m.path.empty() ? "anonymous executable memory (JIT?)" : m.path + " is not a file";
    return file;
  }

  // The file must be the very inode that was mapped: after an upgrade the
  // path names a new build, whose symbols would be wrong.
  std::string opened_from;
  Result<MappedElfFile> mapped =
      NotFound(m.path + " was deleted after it was mapped and no live process holds it");
  if (!m.deleted) {
    std::string path = root_ + m.path;
    mapped = MappedElfFile::Open(path);
    if (mapped.ok() && mapped->inode() != m.inode) {
      mapped =
          NotFound(path + " was replaced after it was mapped (inode " + std::to_string(m.inode) +
                   " mapped, " + std::to_string(mapped->inode()) + " there now)");
    } else if (mapped.ok()) {
      opened_from = path;
    }
  }
  if (opened_from.empty() && pid_ != 0) {
    // The mapped inode itself, even when deleted or replaced. Opening it
    // needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN on most kernels, hence
    // only a fallback.
    std::string link = "/proc/" + std::to_string(pid_) + "/map_files/" + HexRange(m.start, m.limit);
    Result<MappedElfFile> by_link = MappedElfFile::Open(link);
    if (by_link.ok()) {
      mapped = std::move(by_link);
      opened_from = link;
    } else if (m.deleted) {
      mapped = by_link.status().WithContext(m.path + " (deleted)");
    }
  }
  if (!mapped.ok()) {
    file->error = mapped.status().message();
    return file;
  }
  Result<ElfInfo> elf = internal::ParseElf(mapped->image());
  if (!elf.ok()) {
    file->error = opened_from + ": " + elf.status().message();
    return file;
  }
  file->elf = std::make_unique<ElfInfo>(std::move(elf).value());
  AddDebugFileSymbols(root_, file->elf.get());
  return file;
}

const MappingInfo& Symbolizer::LoadMapping(size_t index) {
  MappingInfo& m = mappings_[index];
  if (files_[index] == nullptr) {
    std::string key = CacheKey(m);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      files_[index] = it->second;
    } else {
      files_[index] = OpenAndParse(m);
      cache_.emplace(std::move(key), files_[index]);
    }
  }
  if (!m.loaded) {
    const CachedFile& f = *files_[index];
    m.loaded = true;
    if (f.elf != nullptr) {
      m.build_id = f.elf->build_id;
      m.has_functions = !f.elf->symbols.empty();
    } else {
      m.load_error = f.error;
    }
  }
  return m;
}

SymbolizedPc Symbolizer::Lookup(uint64_t pc) {
  SymbolizedPc out;
  auto it = std::upper_bound(mappings_.begin(), mappings_.end(), pc,
                             [](uint64_t v, const MappingInfo& m) { return v < m.start; });
  if (it == mappings_.begin()) return out;
  --it;
  if (pc >= it->limit) return out;
  size_t index = static_cast<size_t>(it - mappings_.begin());
  out.mapping_index = static_cast<int>(index);
  LoadMapping(index);
  const CachedFile& f = *files_[index];
  if (f.elf == nullptr) return out;
  uint64_t file_offset = pc - it->start + it->file_offset;
  if (!f.elf->FileOffsetToVaddr(file_offset, &out.elf_vaddr)) return out;
  const internal::SymbolTable::Symbol* sym = f.elf->symbols.Find(out.elf_vaddr);
  if (sym == nullptr) return out;
  out.system_name = std::string(f.elf->symbols.Name(*sym));
  out.function = internal::Demangle(out.system_name);
  return out;
}

Result<std::string> ReadBuildId(const std::string& elf_path) {
  SLEUTH_ASSIGN_OR_RETURN(MappedElfFile file, MappedElfFile::Open(elf_path));
  Result<std::string> id = internal::ParseElfBuildId(file.image());
  if (!id.ok()) return id.status().WithContext(elf_path);
  if (id->empty()) {
    return NotFound(elf_path + " has no GNU build ID note (link it with -Wl,--build-id)");
  }
  return id;
}

}  // namespace sleuth::profiles
