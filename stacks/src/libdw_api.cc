#include "libdw_api.h"

#include <dlfcn.h>

#include <mutex>
#include <string>
#include <type_traits>

#include "sleuth/common/dl_symbols.h"

namespace sleuth::stacks::internal {
namespace {

// Each pointer has exactly the type the header declares. (The header's
// nonnull attributes are not part of a type; GCC says so for each.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
static_assert(std::is_same_v<decltype(&dwfl_begin), decltype(LibdwApi::begin)>);
static_assert(std::is_same_v<decltype(&dwfl_end), decltype(LibdwApi::end)>);
static_assert(std::is_same_v<decltype(&dwfl_errno), decltype(LibdwApi::errno_value)>);
static_assert(std::is_same_v<decltype(&dwfl_errmsg), decltype(LibdwApi::errmsg)>);
static_assert(std::is_same_v<decltype(&dwfl_report_begin), decltype(LibdwApi::report_begin)>);
static_assert(std::is_same_v<decltype(&dwfl_report_end), decltype(LibdwApi::report_end)>);
static_assert(
    std::is_same_v<decltype(&dwfl_linux_proc_report), decltype(LibdwApi::linux_proc_report)>);
static_assert(
    std::is_same_v<decltype(&dwfl_linux_proc_find_elf), decltype(LibdwApi::linux_proc_find_elf)>);
static_assert(std::is_same_v<decltype(&dwfl_build_id_find_debuginfo),
                             decltype(LibdwApi::build_id_find_debuginfo)>);
static_assert(std::is_same_v<decltype(&dwfl_addrmodule), decltype(LibdwApi::addrmodule)>);
static_assert(std::is_same_v<decltype(&dwfl_attach_state), decltype(LibdwApi::attach_state)>);
static_assert(std::is_same_v<decltype(&dwfl_thread_state_registers),
                             decltype(LibdwApi::thread_state_registers)>);
static_assert(std::is_same_v<decltype(&dwfl_thread_state_register_pc),
                             decltype(LibdwApi::thread_state_register_pc)>);
static_assert(
    std::is_same_v<decltype(&dwfl_getthread_frames), decltype(LibdwApi::getthread_frames)>);
static_assert(std::is_same_v<decltype(&dwfl_frame_pc), decltype(LibdwApi::frame_pc)>);
static_assert(std::is_same_v<decltype(&dwfl_frame_reg), decltype(LibdwApi::frame_reg)>);
#pragma GCC diagnostic pop


constexpr const char* kPackage = "libdw1";

struct LoadState {
  std::once_flag once;
  LibdwApi api{};
  Status failure;  // not ok when the load failed
};

// Leaked on purpose: unwinders in other threads may still call through it.
LoadState& State() {
  static LoadState* state = new LoadState;
  return *state;
}

Status Load(LibdwApi& out) {
  // RTLD_LOCAL: libdw's and libelf's symbols stay out of the host's scope.
  void* library = dlopen(kLibdwSoname, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    return Unavailable(std::string("stack unwinding needs elfutils' libdw, which cannot be loaded (") +
                       DlErrorText() + "); install the " + kPackage + " package");
  }
  LibdwApi api{};
  std::string why;
  const char* missing = nullptr;
  auto resolve = [&](const char* symbol, auto& slot) {
    if (missing == nullptr && !LookUpSymbol(library, symbol, slot, &why)) missing = symbol;
  };
  resolve("dwfl_begin", api.begin);
  resolve("dwfl_end", api.end);
  resolve("dwfl_errno", api.errno_value);
  resolve("dwfl_errmsg", api.errmsg);
  resolve("dwfl_report_begin", api.report_begin);
  resolve("dwfl_report_end", api.report_end);
  resolve("dwfl_linux_proc_report", api.linux_proc_report);
  resolve("dwfl_linux_proc_find_elf", api.linux_proc_find_elf);
  resolve("dwfl_build_id_find_debuginfo", api.build_id_find_debuginfo);
  resolve("dwfl_addrmodule", api.addrmodule);
  resolve("dwfl_attach_state", api.attach_state);
  resolve("dwfl_thread_state_registers", api.thread_state_registers);
  resolve("dwfl_thread_state_register_pc", api.thread_state_register_pc);
  resolve("dwfl_getthread_frames", api.getthread_frames);
  resolve("dwfl_frame_pc", api.frame_pc);
  resolve("dwfl_frame_reg", api.frame_reg);
  if (missing != nullptr) {
    dlclose(library);
    return Unavailable(std::string("stack unwinding needs ") + missing + " from " + kLibdwSoname +
                       ", which lacks it (" + why + "); install the " + kPackage +
                       " package, version 0.188 or newer");
  }
  out = api;
  return Status::Ok();
}

}  // namespace

Result<const LibdwApi*> LoadLibdw() {
  LoadState& state = State();
  std::call_once(state.once, [&state] { state.failure = Load(state.api); });
  if (!state.failure.ok()) return state.failure;
  return &state.api;
}

}  // namespace sleuth::stacks::internal
