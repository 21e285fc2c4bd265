// elfutils' libdw (libdwfl), loaded privately at run time instead of linked.
//
// Why: the stacks component is linked into libsleuth.so, which is preloaded
// into arbitrary hosts. A DT_NEEDED on libdw.so.1 would load it (and libelf,
// libz, liblzma, libbz2...) into every host at start-up, into the global
// symbol scope. Opened with dlopen(RTLD_NOW | RTLD_LOCAL) only when a stack
// is first unwound, its symbols stay visible to us alone. Only the header
// (elfutils/libdwfl.h) is used at build time; the static_asserts in the .cc
// check each pointer's type against it.
#pragma once

#include <elfutils/libdwfl.h>

#include "sleuth/common/status.h"

namespace sleuth::stacks::internal {

inline constexpr const char* kLibdwSoname = "libdw.so.1";

// The libdwfl functions the unwinder uses, resolved from libdw.so.1.
// Immutable once LoadLibdw() has returned it.
struct LibdwApi {
  Dwfl* (*begin)(const Dwfl_Callbacks* callbacks);
  void (*end)(Dwfl* dwfl);
  int (*errno_value)();  // dwfl_errno
  const char* (*errmsg)(int error);
  void (*report_begin)(Dwfl* dwfl);
  int (*report_end)(Dwfl* dwfl, int (*removed)(Dwfl_Module*, void*, const char*, Dwarf_Addr, void*),
                    void* arg);
  int (*linux_proc_report)(Dwfl* dwfl, pid_t pid);
  int (*linux_proc_find_elf)(Dwfl_Module* mod, void** userdata, const char* module_name,
                             Dwarf_Addr base, char** file_name, Elf** elfp);
  int (*build_id_find_debuginfo)(Dwfl_Module* mod, void** userdata, const char* modname,
                                 Dwarf_Addr base, const char* file_name,
                                 const char* debuglink_file, GElf_Word debuglink_crc,
                                 char** debuginfo_file_name);
  Dwfl_Module* (*addrmodule)(Dwfl* dwfl, Dwarf_Addr address);
  bool (*attach_state)(Dwfl* dwfl, Elf* elf, pid_t pid, const Dwfl_Thread_Callbacks* callbacks,
                       void* dwfl_arg);
  bool (*thread_state_registers)(Dwfl_Thread* thread, int first_register, unsigned count,
                                 const Dwarf_Word* registers);
  void (*thread_state_register_pc)(Dwfl_Thread* thread, Dwarf_Word pc);
  int (*getthread_frames)(Dwfl* dwfl, pid_t tid, int (*callback)(Dwfl_Frame*, void*), void* arg);
  bool (*frame_pc)(Dwfl_Frame* frame, Dwarf_Addr* pc, bool* is_activation);
  int (*frame_reg)(Dwfl_Frame* frame, unsigned regno, Dwarf_Word* value);
};

// Opens libdw.so.1 on the first call and resolves LibdwApi; later calls
// return the same table, or the same error (naming the Debian package to
// install). The table and the library are never freed.
// Thread-safety: thread safe. Not async-signal-safe.
Result<const LibdwApi*> LoadLibdw();

}  // namespace sleuth::stacks::internal
