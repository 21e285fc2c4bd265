#include "sleuth/stacks/dwarf_unwinder.h"

#include <dlfcn.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "libdw_api.h"

namespace sleuth::stacks {
namespace {

using internal::LibdwApi;

// x86-64 DWARF register numbers (System V psABI, figure 3.36).
enum DwarfRegister : unsigned {
  kDwarfRax = 0,
  kDwarfRdx = 1,
  kDwarfRcx = 2,
  kDwarfRbx = 3,
  kDwarfRsi = 4,
  kDwarfRdi = 5,
  kDwarfRbp = 6,
  kDwarfRsp = 7,
  kDwarfR8 = 8,
  // r9..r15 follow
  kDwarfReturnAddress = 16,  // the rip column
  kDwarfRegisterCount = 17,
};

// Frame-pointer steps taken after libdwfl gives up, at most; each one is
// also checked to move up the stack.
constexpr size_t kMaxFramePointerSteps = 128;

// The Dwfl_Callbacks take no argument of ours, so they reach the table
// through the loader; only called once a Dwfl exists, i.e. once it loaded.
const LibdwApi* Api() {
  return *internal::LoadLibdw();
}

// Marks an fd libdwfl will keep open close-on-exec, so that a host's execve
// during a profile does not inherit it. (libdwfl opens without O_CLOEXEC; a
// concurrent exec between its open and this call can still inherit it.)
int SetCloseOnExec(int fd) {
  if (fd >= 0) fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
  return fd;
}

int FindElf(Dwfl_Module* mod, void** userdata, const char* module_name, Dwarf_Addr base,
            char** file_name, Elf** elfp) {
  return SetCloseOnExec(
      Api()->linux_proc_find_elf(mod, userdata, module_name, base, file_name, elfp));
}

// Separate debug files by build ID under /usr/lib/debug only. Not
// dwfl_standard_find_debuginfo: with DEBUGINFOD_URLS set (Debian sets it
// for login shells) it would download debug files from the network inside
// the host. .eh_frame, which every unwind here needs, is in the file itself.
int FindDebuginfo(Dwfl_Module* mod, void** userdata, const char* modname, Dwarf_Addr base,
                  const char* file_name, const char* debuglink_file, GElf_Word debuglink_crc,
                  char** debuginfo_file_name) {
  return SetCloseOnExec(Api()->build_id_find_debuginfo(mod, userdata, modname, base, file_name,
                                                       debuglink_file, debuglink_crc,
                                                       debuginfo_file_name));
}

char* g_debuginfo_path = nullptr;  // libdwfl's default search path

const Dwfl_Callbacks kDwflCallbacks = {
    .find_elf = &FindElf,
    .find_debuginfo = &FindDebuginfo,
    .section_address = nullptr,
    .debuginfo_path = &g_debuginfo_path,
};

class DwflUnwinder final : public DwarfUnwinder {
 public:
  DwflUnwinder(const LibdwApi* api, pid_t pid) : api_(api), pid_(pid) {}
  ~DwflUnwinder() override { Close(); }

  // Reports the target's modules to a new Dwfl and attaches our thread
  // callbacks. A fresh Dwfl rather than re-reporting into the old one:
  // libdwfl's process state borrows the architecture backend of one module,
  // which a re-report that drops that module would free under it.
  Status Open() {
    Dwfl* dwfl = api_->begin(&kDwflCallbacks);
    if (dwfl == nullptr) return Internal(std::string("dwfl_begin: ") + api_->errmsg(-1));
    api_->report_begin(dwfl);
    const int reported = api_->linux_proc_report(dwfl, pid_);
    if (reported != 0) {
      api_->end(dwfl);
      if (reported > 0) {
        if (reported == ENOENT || reported == ESRCH) {
          return Gone("process " + std::to_string(pid_) + " exited");
        }
        return ErrnoStatus("reading /proc/" + std::to_string(pid_) + "/maps", reported);
      }
      return IoError("reading /proc/" + std::to_string(pid_) + "/maps: " + api_->errmsg(-1));
    }
    if (api_->report_end(dwfl, nullptr, nullptr) != 0) {
      const std::string why = api_->errmsg(-1);
      api_->end(dwfl);
      return Internal("dwfl_report_end: " + why);
    }
    if (!api_->attach_state(dwfl, nullptr, pid_, &kThreadCallbacks, this)) {
      const std::string why = api_->errmsg(-1);
      api_->end(dwfl);
      return Internal("dwfl_attach_state for process " + std::to_string(pid_) + ": " + why);
    }
    Close();
    dwfl_ = dwfl;
    return Status::Ok();
  }

  Status Refresh() override { return Open(); }

  UnwindResult Unwind(pid_t tid, const Registers& regs, const StackCopy* stack, uint64_t* pcs,
                      size_t max_frames) override {
    UnwindResult result;
    if (max_frames == 0 || pcs == nullptr) return result;
    if (dwfl_ == nullptr) {
      pcs[0] = regs.rip;
      result.frames = 1;
      result.stopped_because = "no unwinder state";
      return result;
    }
    walk_ = Walk{};
    walk_.tid = tid;
    walk_.regs = &regs;
    walk_.stack = stack;
    walk_.pcs = pcs;
    walk_.max_frames = max_frames;
    const int status = api_->getthread_frames(dwfl_, tid, &DwflUnwinder::OnFrame, this);
    if (status == 0) {  // reached the outermost frame
      result.frames = walk_.frames;
      return result;
    }
    if (walk_.frames >= max_frames) {
      result.frames = walk_.frames;
      return result;
    }
    if (walk_.frames == 0) {
      // libdwfl could not even take the first frame; the pc itself is known.
      pcs[0] = regs.rip;
      walk_.frames = 1;
      walk_.last_rbp = regs.rbp;
      walk_.last_rbp_known = true;
      walk_.last_rsp = regs.rsp;
    }
    // libdwfl found no CFI for a frame (and its own fallback failed): try
    // the frame-pointer chain from the last frame it produced, for code
    // built with -fno-omit-frame-pointer but without unwind tables.
    const size_t before = walk_.frames;
    StepFramePointers();
    result.frames = walk_.frames;
    if (walk_.frames == before) {
      result.stopped_because = status > 0 ? "frame pc unreadable" : "no unwind info for a frame";
    }
    return result;
  }

 private:
  struct Walk {
    pid_t tid = 0;
    const Registers* regs = nullptr;
    const StackCopy* stack = nullptr;
    uint64_t* pcs = nullptr;
    size_t max_frames = 0;
    size_t frames = 0;
    bool thread_listed = false;
    // The last frame's rbp and rsp (for the frame-pointer fallback).
    uint64_t last_rbp = 0;
    uint64_t last_rsp = 0;
    bool last_rbp_known = false;
    // A small window of live target memory, for reads outside the copy.
    uint64_t cached_start = 0;
    size_t cached_size = 0;
    uint8_t cached[256];
  };

  void Close() {
    if (dwfl_ != nullptr) api_->end(dwfl_);
    dwfl_ = nullptr;
  }

  bool ReadWord(uint64_t address, uint64_t* value) {
    if (walk_.stack != nullptr && address >= walk_.stack->start &&
        address - walk_.stack->start + sizeof(uint64_t) <= walk_.stack->bytes.size()) {
      std::memcpy(value, walk_.stack->bytes.data() + (address - walk_.stack->start), sizeof *value);
      return true;
    }
    if (walk_.cached_size != 0 && address >= walk_.cached_start &&
        address - walk_.cached_start + sizeof(uint64_t) <= walk_.cached_size) {
      std::memcpy(value, walk_.cached + (address - walk_.cached_start), sizeof *value);
      return true;
    }
    // Read an aligned block up to its page's end (a read across into an
    // unmapped page would fail as a whole).
    const uint64_t block = address & ~uint64_t{sizeof walk_.cached - 1};
    const uint64_t page_end = (address | 4095) + 1;
    size_t length = sizeof walk_.cached;
    if (block + length > page_end) length = page_end - block;
    iovec local{walk_.cached, length};
    iovec remote{reinterpret_cast<void*>(block), length};
    const ssize_t got = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
    if (got > 0 && address + sizeof(uint64_t) <= block + static_cast<uint64_t>(got)) {
      walk_.cached_start = block;
      walk_.cached_size = static_cast<size_t>(got);
      std::memcpy(value, walk_.cached + (address - block), sizeof *value);
      return true;
    }
    walk_.cached_size = 0;
    // A word straddling two pages.
    local = {value, sizeof *value};
    remote = {reinterpret_cast<void*>(address), sizeof *value};
    return process_vm_readv(pid_, &local, 1, &remote, 1, 0) == sizeof *value;
  }

  bool Record(uint64_t pc) {
    walk_.pcs[walk_.frames++] = pc;
    return walk_.frames < walk_.max_frames;
  }

  void StepFramePointers() {
    if (!walk_.last_rbp_known) return;
    uint64_t rbp = walk_.last_rbp;
    uint64_t lowest = walk_.last_rsp;
    for (size_t step = 0; step < kMaxFramePointerSteps && walk_.frames < walk_.max_frames; ++step) {
      // A frame record is [saved rbp, return address], 8-aligned, above
      // the current stack pointer, and each one higher than the last.
      if (rbp == 0 || (rbp & 7) != 0 || rbp < lowest) return;
      uint64_t saved_rbp = 0;
      uint64_t return_address = 0;
      if (!ReadWord(rbp, &saved_rbp) || !ReadWord(rbp + 8, &return_address)) return;
      if (return_address == 0) return;
      if (api_->addrmodule(dwfl_, return_address - 1) == nullptr) return;  // not code
      if (!Record(return_address)) return;
      lowest = rbp + 16;
      rbp = saved_rbp;
    }
  }

  static int OnFrame(Dwfl_Frame* frame, void* arg) {
    auto* self = static_cast<DwflUnwinder*>(arg);
    Walk& walk = self->walk_;
    Dwarf_Addr pc = 0;
    bool is_activation = false;
    if (!self->api_->frame_pc(frame, &pc, &is_activation)) return 1;  // stop: pc unknown
    // Frames after the first are return addresses (the symbolizer looks
    // them up at pc - 1); a signal frame's interrupted pc is exact, so it is
    // shifted by one to keep that convention.
    if (walk.frames > 0 && is_activation) pc += 1;
    Dwarf_Word rbp = 0;
    Dwarf_Word rsp = 0;
    walk.last_rbp_known = self->api_->frame_reg(frame, kDwarfRbp, &rbp) == 0;
    walk.last_rbp = rbp;
    walk.last_rsp = self->api_->frame_reg(frame, kDwarfRsp, &rsp) == 0 ? rsp : 0;
    if (!self->Record(pc)) return 2;  // stop: max_frames reached
    return DWARF_CB_OK;
  }

  // Thread callbacks: the only thread is the one being unwound, frozen in
  // the registers and stack copy the caller gave.
  static pid_t NextThread(Dwfl*, void* dwfl_arg, void** thread_arg) {
    auto* self = static_cast<DwflUnwinder*>(dwfl_arg);
    if (self->walk_.thread_listed) return 0;
    self->walk_.thread_listed = true;
    *thread_arg = dwfl_arg;
    return self->walk_.tid;
  }

  static bool GetThread(Dwfl*, pid_t tid, void* dwfl_arg, void** thread_arg) {
    auto* self = static_cast<DwflUnwinder*>(dwfl_arg);
    if (tid != self->walk_.tid) return false;
    *thread_arg = dwfl_arg;
    return true;
  }

  static bool MemoryRead(Dwfl*, Dwarf_Addr address, Dwarf_Word* result, void* dwfl_arg) {
    uint64_t value = 0;
    if (!static_cast<DwflUnwinder*>(dwfl_arg)->ReadWord(address, &value)) return false;
    *result = value;
    return true;
  }

  static bool SetInitialRegisters(Dwfl_Thread* thread, void* thread_arg) {
    auto* self = static_cast<DwflUnwinder*>(thread_arg);
    const Registers& r = *self->walk_.regs;
    const Dwarf_Word dwarf[kDwarfRegisterCount] = {
        r.rax, r.rdx, r.rcx, r.rbx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8,
        r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip,
    };
    if (!self->api_->thread_state_registers(thread, 0, kDwarfRegisterCount, dwarf)) return false;
    self->api_->thread_state_register_pc(thread, r.rip);
    return true;
  }

  static constexpr Dwfl_Thread_Callbacks kThreadCallbacks = {
      .next_thread = &DwflUnwinder::NextThread,
      .get_thread = &DwflUnwinder::GetThread,
      .memory_read = &DwflUnwinder::MemoryRead,
      .set_initial_registers = &DwflUnwinder::SetInitialRegisters,
      .detach = nullptr,
      .thread_detach = nullptr,
  };

  const LibdwApi* api_;
  const pid_t pid_;
  Dwfl* dwfl_ = nullptr;
  Walk walk_;
};

}  // namespace

DwarfUnwinder::~DwarfUnwinder() = default;

Result<std::unique_ptr<DwarfUnwinder>> DwarfUnwinder::ForProcess(pid_t pid) {
  if (pid <= 0) return InvalidArgument("unwinder target pid must be positive");
  SLEUTH_ASSIGN_OR_RETURN(const LibdwApi* api, internal::LoadLibdw());
  auto unwinder = std::make_unique<DwflUnwinder>(api, pid);
  SLEUTH_RETURN_IF_ERROR(unwinder->Open());
  return std::unique_ptr<DwarfUnwinder>(std::move(unwinder));
}

// Cheap on purpose: it runs at the agent's start, in every host, where
// loading libdw (and libelf, libz, liblzma, libbz2, libzstd with it) would
// cost milliseconds for a profile that may never be taken. The library is
// loaded by the first ForProcess(), which reports a failure to load it.
Status DwarfUnwinderAvailable() {
  if (void* loaded = dlopen(internal::kLibdwSoname, RTLD_LAZY | RTLD_NOLOAD)) {
    dlclose(loaded);  // drops the reference NOLOAD took
    return Status::Ok();
  }
  std::vector<std::string> dirs;
  if (const char* extra = std::getenv("LD_LIBRARY_PATH")) {
    std::string_view rest = extra;
    while (!rest.empty()) {
      size_t colon = rest.find(':');
      dirs.emplace_back(rest.substr(0, colon));
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
  }
  for (const char* dir : {SLEUTH_LIBRARY_DIR, "/lib/" SLEUTH_MULTIARCH, "/usr/lib/" SLEUTH_MULTIARCH,
                          "/usr/local/lib", "/usr/lib64", "/lib64", "/usr/lib", "/lib"})
    dirs.emplace_back(dir);
  for (const std::string& dir : dirs) {
    if (dir.empty()) continue;
    if (access((dir + "/" + internal::kLibdwSoname).c_str(), R_OK) == 0) return Status::Ok();
  }
  return Unavailable(std::string(internal::kLibdwSoname) +
                     " (elfutils) is not installed: CPU profiles need it to unwind stacks; "
                     "install Debian's libdw1 package");
}

}  // namespace sleuth::stacks
