#include "sleuth/profiles/symbolizer.h"

#include <dlfcn.h>
#include <elf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "test_util.h"

// Static, in an executable that exports nothing: only .symtab names it.
__attribute__((noinline, noclone)) static int SymbolizerTestStaticFunction(int x) {
  volatile int v = x;
  for (int i = 0; i < 8; ++i) v = v * 7 + i;
  return v;
}

namespace sleuth_symbolizer_test {
__attribute__((noinline, noclone)) int NamespacedFunction(const char* s, int n) {
  volatile int v = s[0] + n;
  return v;
}
}  // namespace sleuth_symbolizer_test

namespace sleuth::profiles {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using testing::MakeTempDir;
using testing::RemoveTree;
using testing::RunCommand;
using ::testing::StartsWith;

uint64_t Pc(const void* function, uint64_t offset = 0) {
  return reinterpret_cast<uint64_t>(function) + offset;
}

std::string SelfExePath() {
  return std::filesystem::read_symlink("/proc/self/exe").string();
}

// The build ID as binutils prints it: an independent reader of the note.
std::string ReadelfBuildId(const std::string& path) {
  int exit_code = 0;
  std::string out = RunCommand("readelf -n '" + path + "' 2>/dev/null", &exit_code);
  size_t at = out.find("Build ID: ");
  if (exit_code != 0 || at == std::string::npos) return "";
  at += std::strlen("Build ID: ");
  return out.substr(at, out.find('\n', at) - at);
}

TEST(SymbolizerTest, NamesAStaticFunctionOfThePieExecutableThroughSymtab) {
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok()) << sym.status().message();
  // A pc in the middle of the function, as a sampled pc would be.
  SymbolizedPc s = sym->Lookup(Pc(reinterpret_cast<void*>(&SymbolizerTestStaticFunction), 2));
  EXPECT_EQ(s.function, "SymbolizerTestStaticFunction(int)");
  EXPECT_THAT(s.system_name, StartsWith("_Z"));
  ASSERT_GE(s.mapping_index, 0);
  const MappingInfo& m = sym->mappings()[static_cast<size_t>(s.mapping_index)];
  EXPECT_EQ(m.path, SelfExePath());
  EXPECT_EQ(sym->main_mapping_index(), s.mapping_index);
  EXPECT_TRUE(m.has_functions);
  // PIE: the load address is not the file's own vaddr, and the translation
  // went through the PT_LOAD segment rather than assuming they are equal.
  EXPECT_NE(s.elf_vaddr, Pc(reinterpret_cast<void*>(&SymbolizerTestStaticFunction), 2));
  EXPECT_LT(s.elf_vaddr, 0x10000000u) << "file vaddrs of a PIE start near 0";
  EXPECT_NE(SymbolizerTestStaticFunction(1), 0);
}

TEST(SymbolizerTest, KeepsFullDemangledNames) {
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok());
  SymbolizedPc s =
      sym->Lookup(Pc(reinterpret_cast<void*>(&sleuth_symbolizer_test::NamespacedFunction)));
  EXPECT_EQ(s.function, "sleuth_symbolizer_test::NamespacedFunction(char const*, int)");
}

TEST(SymbolizerTest, NamesALibcFunctionThroughDynsym) {
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok());
  void* qsort_address = testing::LibcFunction("qsort");
  ASSERT_NE(qsort_address, nullptr);
  SymbolizedPc s = sym->Lookup(Pc(qsort_address, 1));
  EXPECT_EQ(s.function, "qsort");
  ASSERT_GE(s.mapping_index, 0);
  const MappingInfo& m = sym->mappings()[static_cast<size_t>(s.mapping_index)];
  EXPECT_THAT(m.path, EndsWith("/libc.so.6"));
  EXPECT_EQ(m.build_id, ReadelfBuildId(m.path));
  // getpid and __getpid share an address: the public name wins.
  void* getpid_address = testing::LibcFunction("getpid");
  ASSERT_NE(getpid_address, nullptr);
  EXPECT_EQ(sym->Lookup(Pc(getpid_address)).function, "getpid");
}

TEST(SymbolizerTest, BuildIdMatchesReadelf) {
  std::string exe = SelfExePath();
  std::string expected = ReadelfBuildId(exe);
  ASSERT_EQ(expected.size(), 40u) << "readelf -n found no build ID in " << exe;
  Result<std::string> id = ReadBuildId(exe);
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(*id, expected);

  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok());
  ASSERT_GE(sym->main_mapping_index(), 0);
  EXPECT_EQ(sym->LoadMapping(static_cast<size_t>(sym->main_mapping_index())).build_id, expected);
}

TEST(SymbolizerTest, ReadBuildIdErrors) {
  EXPECT_EQ(ReadBuildId("/nonexistent/binary").status().code(), StatusCode::kNotFound);
  std::string dir = MakeTempDir();
  // A bare ELF header: valid, but no notes.
  Elf64_Ehdr header{};
  std::memcpy(header.e_ident, ELFMAG, SELFMAG);
  header.e_ident[EI_CLASS] = ELFCLASS64;
  header.e_ident[EI_DATA] = ELFDATA2LSB;
  header.e_type = ET_DYN;
  std::ofstream(dir + "/bare", std::ios::binary)
      .write(reinterpret_cast<const char*>(&header), sizeof header);
  Result<std::string> id = ReadBuildId(dir + "/bare");
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(id.status().message(), HasSubstr("no GNU build ID"));
  std::ofstream(dir + "/text") << "not an elf file at all";
  EXPECT_THAT(ReadBuildId(dir + "/text").status().message(), HasSubstr("not an ELF file"));
  RemoveTree(dir);
}

TEST(SymbolizerTest, ParsesEachFileOnceAcrossLookupsAndRefreshes) {
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok());
  void* qsort_address = testing::LibcFunction("qsort");
  EXPECT_EQ(sym->Lookup(Pc(qsort_address, 1)).function, "qsort");
  EXPECT_EQ(sym->Lookup(Pc(reinterpret_cast<void*>(&SymbolizerTestStaticFunction))).function,
            "SymbolizerTestStaticFunction(int)");
  size_t parsed = sym->files_parsed();
  EXPECT_EQ(parsed, 2u);
  ASSERT_TRUE(sym->Refresh().ok());
  EXPECT_EQ(sym->Lookup(Pc(qsort_address, 2)).function, "qsort");
  EXPECT_EQ(sym->Lookup(Pc(reinterpret_cast<void*>(&SymbolizerTestStaticFunction), 1)).function,
            "SymbolizerTestStaticFunction(int)");
  EXPECT_EQ(sym->files_parsed(), parsed) << "a refresh must not re-parse mapped files";
}

TEST(SymbolizerTest, SharedLibraryLoadedAfterStartNeedsRefreshAndSurvivesDeletion) {
  std::string dir = MakeTempDir();
  std::string copy = dir + "/libsleuth_test_dso_copy.so";
  std::filesystem::copy_file(PROFILES_TEST_DSO, copy);
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok());

  void* handle = ::dlopen(copy.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << ::dlerror();
  auto entry = reinterpret_cast<int (*)(int)>(::dlsym(handle, "sleuth_test_dso_entry"));
  auto local = reinterpret_cast<void* (*)()>(::dlsym(handle, "sleuth_test_dso_local_helper"));
  ASSERT_NE(entry, nullptr);
  ASSERT_NE(local, nullptr);
  EXPECT_EQ(entry(1), 6);

  // Not in the maps read before the dlopen.
  EXPECT_EQ(sym->Lookup(Pc(reinterpret_cast<void*>(entry))).mapping_index, -1);
  ASSERT_TRUE(sym->Refresh().ok());
  SymbolizedPc s = sym->Lookup(Pc(reinterpret_cast<void*>(entry)));
  EXPECT_EQ(s.function, "sleuth_test_dso_entry");
  ASSERT_GE(s.mapping_index, 0);
  EXPECT_EQ(sym->mappings()[static_cast<size_t>(s.mapping_index)].path, copy);
  // A function local to the library: .symtab of a shared object, with the
  // library's load bias applied.
  EXPECT_EQ(sym->Lookup(Pc(local(), 1)).function, "sleuth_test_dso::LocalHelper(int)");

  // Deleted while mapped: maps says " (deleted)". The file is read through
  // /proc/self/map_files where permitted (root, CAP_CHECKPOINT_RESTORE);
  // either way nothing fails.
  std::filesystem::remove(copy);
  Result<Symbolizer> after = Symbolizer::ForProcess();
  ASSERT_TRUE(after.ok());
  SymbolizedPc d = after->Lookup(Pc(reinterpret_cast<void*>(entry)));
  ASSERT_GE(d.mapping_index, 0);
  const MappingInfo& m = after->mappings()[static_cast<size_t>(d.mapping_index)];
  EXPECT_EQ(m.path, copy);
  EXPECT_TRUE(m.deleted);
  if (m.has_functions) {
    EXPECT_EQ(d.function, "sleuth_test_dso_entry");
  } else {
    EXPECT_FALSE(m.load_error.empty());
  }
  ::dlclose(handle);
  RemoveTree(dir);
}

TEST(SymbolizerTest, AnonymousExecutableMemoryHasAMappingButNoNames) {
  const size_t size = 4096;
  void* jit =
      ::mmap(nullptr, size, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (jit == MAP_FAILED) GTEST_SKIP() << "this kernel refuses anonymous executable memory";
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok());
  SymbolizedPc s = sym->Lookup(Pc(jit, 100));
  ASSERT_GE(s.mapping_index, 0);
  EXPECT_TRUE(s.function.empty());
  const MappingInfo& m = sym->mappings()[static_cast<size_t>(s.mapping_index)];
  EXPECT_FALSE(m.has_functions);
  EXPECT_THAT(m.load_error, HasSubstr("anonymous"));
  ::munmap(jit, size);
}

TEST(SymbolizerTest, NamesVdsoFunctionsFromMemory) {
  uint64_t vdso = ::getauxval(AT_SYSINFO_EHDR);
  if (vdso == 0) GTEST_SKIP() << "no vDSO in this process";
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok());
  SymbolizedPc first = sym->Lookup(vdso);
  ASSERT_GE(first.mapping_index, 0);
  const MappingInfo& m = sym->mappings()[static_cast<size_t>(first.mapping_index)];
  EXPECT_EQ(m.path, "[vdso]");
  std::string named;
  for (uint64_t pc = m.start; pc < m.limit && named.empty(); pc += 4) {
    named = sym->Lookup(pc).function;
  }
  EXPECT_THAT(named, ::testing::AnyOf(HasSubstr("time"), HasSubstr("getcpu")));
}

TEST(SymbolizerTest, PcsOutsideAnyMappingAreUnknown) {
  Result<Symbolizer> sym = Symbolizer::ForProcess();
  ASSERT_TRUE(sym.ok());
  SymbolizedPc s = sym->Lookup(0x10);
  EXPECT_EQ(s.mapping_index, -1);
  EXPECT_TRUE(s.function.empty());
  // A data address (the stack) is in no executable mapping either.
  int on_stack = 0;
  EXPECT_EQ(sym->Lookup(Pc(&on_stack)).mapping_index, -1);
}

TEST(SymbolizerTest, MissingFilesFromMapsTextAreReportedNotFatal) {
  Result<Symbolizer> sym =
      Symbolizer::ForMapsText(testing::ReadFixture("proc_maps_edge_cases.txt"));
  ASSERT_TRUE(sym.ok()) << sym.status().message();
  // Executable mappings only: server text, v8 code, libc text, plugin,
  // anonymous r-x, vdso, vsyscall.
  EXPECT_EQ(sym->mappings().size(), 7u);
  SymbolizedPc s = sym->Lookup(0x55d0c1a02100);
  ASSERT_GE(s.mapping_index, 0);
  EXPECT_TRUE(s.function.empty());
  const MappingInfo& m = sym->LoadMapping(static_cast<size_t>(s.mapping_index));
  EXPECT_EQ(m.path, "/opt/app/bin/server");
  EXPECT_THAT(m.load_error, HasSubstr("/opt/app/bin/server"));
  EXPECT_EQ(sym->main_mapping_index(), -1);
  EXPECT_TRUE(sym->Refresh().ok());  // nothing to re-read
}

// Maps text naming this test executable, with the inode given.
std::string SelfMapsWithInode(uint64_t inode) {
  Result<Symbolizer> live = Symbolizer::ForProcess();
  EXPECT_TRUE(live.ok());
  const MappingInfo& m = live->mappings()[static_cast<size_t>(live->main_mapping_index())];
  char line[4200];
  std::snprintf(line, sizeof line, "%lx-%lx r-xp %08lx 00:00 %lu %s\n",
                static_cast<unsigned long>(m.start), static_cast<unsigned long>(m.limit),
                static_cast<unsigned long>(m.file_offset), static_cast<unsigned long>(inode),
                m.path.c_str());
  return line;
}

TEST(SymbolizerTest, MapsTextUsesFilesOnlyIfTheInodeMatches) {
  uint64_t pc = Pc(reinterpret_cast<void*>(&SymbolizerTestStaticFunction), 1);
  struct stat st;
  ASSERT_EQ(::stat("/proc/self/exe", &st), 0);
  const uint64_t inode = st.st_ino;

  Result<Symbolizer> same = Symbolizer::ForMapsText(SelfMapsWithInode(inode));
  ASSERT_TRUE(same.ok()) << same.status().message();
  EXPECT_EQ(same->Lookup(pc).function, "SymbolizerTestStaticFunction(int)");

  // Another inode: the file at that path is another build now.
  Result<Symbolizer> replaced = Symbolizer::ForMapsText(SelfMapsWithInode(inode + 1));
  ASSERT_TRUE(replaced.ok());
  SymbolizedPc s = replaced->Lookup(pc);
  EXPECT_TRUE(s.function.empty());
  ASSERT_GE(s.mapping_index, 0);
  EXPECT_THAT(replaced->mappings()[static_cast<size_t>(s.mapping_index)].load_error,
              HasSubstr("was replaced after it was mapped"));
}

TEST(SymbolizerTest, ProcessThatDoesNotExist) {
  Result<Symbolizer> sym = Symbolizer::ForProcess(999999999);
  ASSERT_FALSE(sym.ok());
  EXPECT_THAT(sym.status().message(), HasSubstr("process 999999999"));
}

TEST(SymbolizerTest, MalformedMapsTextIsAnError) {
  Result<Symbolizer> sym = Symbolizer::ForMapsText(testing::ReadFixture("proc_maps_malformed.txt"));
  ASSERT_FALSE(sym.ok());
  EXPECT_THAT(sym.status().message(), HasSubstr("line 2"));
}

}  // namespace
}  // namespace sleuth::profiles
