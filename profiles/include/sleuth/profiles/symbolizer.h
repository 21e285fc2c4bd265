// Symbolization in the agent: turns a program counter of a live process into
// the executable mapping it belongs to and the name of its function, by
// reading the process's /proc/<pid>/maps and the ELF files it maps
// (.symtab first, so static functions of an executable that exports nothing
// are named; .dynsym otherwise; a separate debug file found through the
// build ID under /usr/lib/debug/.build-id when the file itself is stripped).
//
// Memory: per file only the function symbols are kept (16 bytes each plus
// the name once); the file is mmapped read-only while it is parsed and
// unmapped right after. Files stay cached, keyed by (path, inode), until a
// Refresh() finds them no longer mapped, so a second dump of the same
// process parses nothing again: keep one Symbolizer per watched process.
//
// Thread-safety: thread-compatible. Lookup() fills the cache, so one
// Symbolizer must be used by one thread at a time (the agent's dump worker);
// distinct Symbolizers share nothing. No global state and no locks, so a
// fork never inherits a half-held one; but the pid is fixed at construction:
// a forked child that profiles itself needs its own Symbolizer. Not async-signal-safe
// (it allocates, opens files and mmaps): never call it from a signal handler.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sleuth/common/status.h"
#include "sleuth/profiles/proc_maps.h"

namespace sleuth::profiles {

namespace internal {
struct ElfInfo;
}

// An executable mapping of the process, as pprof's Mapping wants it.
struct MappingInfo {
  uint64_t start = 0;
  uint64_t limit = 0;  // exclusive
  uint64_t file_offset = 0;
  std::string path;  // as in maps: "/usr/lib/.../libc.so.6", "[vdso]", "" for anonymous
  bool deleted = false;
  uint64_t inode = 0;
  // Filled when the mapping's file is loaded (Lookup() does it on first use,
  // LoadMapping() on demand):
  bool loaded = false;
  std::string build_id;        // lowercase hex GNU build ID; empty if unknown
  bool has_functions = false;  // a symbol table was found for the file
  std::string load_error;      // why the file could not be read, if it could not
};

struct SymbolizedPc {
  int mapping_index = -1;   // into Symbolizer::mappings(); -1: in no executable mapping
  std::string function;     // demangled name; empty when unknown
  std::string system_name;  // the name as in the symbol table (mangled)
  uint64_t elf_vaddr = 0;   // the pc in the file's own address space, when known
};

class Symbolizer {
 public:
  // Reads /proc/<pid>/maps now (pid 0 means this process). Files are opened
  // later, on first lookup, through /proc/<pid>/root (so a process in
  // another mount namespace is read from its own files) and, when that path
  // is gone or holds another inode (deleted, or replaced by an upgrade),
  // through /proc/<pid>/map_files (which needs CAP_CHECKPOINT_RESTORE or
  // CAP_SYS_ADMIN on most kernels). A file whose inode differs from the
  // mapped one is never used: its symbols would be another build's.
  static Result<Symbolizer> ForProcess(pid_t pid = 0);

  // A symbolizer over maps text captured earlier (e.g. the maps section of a
  // gperftools profile). Files are opened at `root` + path ("" = this
  // filesystem), and only used if their inode is the one in the text.
  static Result<Symbolizer> ForMapsText(std::string_view maps_text, std::string root = "");

  Symbolizer(Symbolizer&&) noexcept;
  Symbolizer& operator=(Symbolizer&&) noexcept;
  ~Symbolizer();

  // Re-reads the maps (after the host dlopened or dlclosed a library).
  // Parsed files still mapped stay cached; the others are dropped.
  [[nodiscard]] Status Refresh();

  // The executable mappings, in address order.
  const std::vector<MappingInfo>& mappings() const { return mappings_; }
  // Loads the file behind mappings()[index] if not yet done (fills build_id
  // and has_functions) and returns it.
  const MappingInfo& LoadMapping(size_t index);
  // Index of the process's main executable mapping, or -1 if unknown.
  int main_mapping_index() const { return main_mapping_index_; }

  // Symbolizes an exact pc. For a return address pass pc - 1, so that a call
  // at the very end of a function is attributed to its caller.
  SymbolizedPc Lookup(uint64_t pc);

  pid_t pid() const { return pid_; }
  // Files parsed since construction (a cache hit does not count); for tests.
  size_t files_parsed() const { return files_parsed_; }

 private:
  struct CachedFile;
  Symbolizer() = default;
  Status Load(std::string_view maps_text);
  std::shared_ptr<const CachedFile> OpenAndParse(const MappingInfo& m);

  pid_t pid_ = 0;         // 0 when built from maps text
  std::string root_;      // prefix for file paths
  std::string exe_path_;  // readlink of /proc/<pid>/exe, for main_mapping_index_
  std::vector<MappingInfo> mappings_;
  std::vector<std::shared_ptr<const CachedFile>> files_;  // parallel to mappings_
  int main_mapping_index_ = -1;
  // (path, inode) -> parsed file; entries are shared by all mappings of one
  // file and survive Refresh() while still mapped.
  std::unordered_map<std::string, std::shared_ptr<const CachedFile>> cache_;
  size_t files_parsed_ = 0;
};

// The lowercase hex GNU build ID of an ELF file, for the dump's JSON
// sidecar. kNotFound if the file has no build ID note.
Result<std::string> ReadBuildId(const std::string& elf_path);

}  // namespace sleuth::profiles
