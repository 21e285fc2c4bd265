#include "elf_reader.h"

#include <elf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <link.h>

#include <cstring>

#include "test_util.h"

namespace sleuth::profiles::internal {
namespace {

using ::testing::HasSubstr;

// Only .symtab names this: static, and test executables export nothing.
__attribute__((noinline, noclone)) static int ElfReaderStaticFunction(int x) {
  asm volatile("" ::: "memory");
  return x + 11;
}

std::string LibcPath() {
  std::string path;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        if (std::strstr(info->dlpi_name, "/libc.so.6") != nullptr) {
          *static_cast<std::string*>(data) = info->dlpi_name;
          return 1;
        }
        return 0;
      },
      &path);
  return path;
}

TEST(ElfReaderTest, ReadsTheTestExecutable) {
  Result<MappedElfFile> file = MappedElfFile::Open("/proc/self/exe");
  ASSERT_TRUE(file.ok()) << file.status().message();
  Result<ElfInfo> elf = ParseElf(file->image());
  ASSERT_TRUE(elf.ok()) << elf.status().message();
  EXPECT_TRUE(elf->shared_object) << "test executables are PIE on Debian";
  EXPECT_EQ(elf->symbol_source, ".symtab");
  EXPECT_GT(elf->symbols.size(), 100u);
  EXPECT_EQ(elf->build_id.size(), 40u) << "a 20-byte SHA-1 build ID";
  bool has_executable_load = false;
  for (const LoadSegment& s : elf->loads) has_executable_load |= s.executable;
  EXPECT_TRUE(has_executable_load);
  EXPECT_EQ(ElfReaderStaticFunction(1), 12);
}

TEST(ElfReaderTest, FallsBackToDynsymForStrippedLibraries) {
  std::string libc = LibcPath();
  ASSERT_FALSE(libc.empty());
  Result<MappedElfFile> file = MappedElfFile::Open(libc);
  ASSERT_TRUE(file.ok()) << file.status().message();
  Result<ElfInfo> elf = ParseElf(file->image());
  ASSERT_TRUE(elf.ok()) << elf.status().message();
  // Debian ships libc without .symtab (it is in the -dbg package).
  EXPECT_EQ(elf->symbol_source, ".dynsym");
  EXPECT_GT(elf->symbols.size(), 1000u);
  EXPECT_FALSE(elf->build_id.empty());
}

TEST(ElfReaderTest, FindsSymbolsByAddressAndPrefersPublicAliases) {
  Result<MappedElfFile> file = MappedElfFile::Open(LibcPath());
  ASSERT_TRUE(file.ok());
  Result<ElfInfo> elf = ParseElf(file->image());
  ASSERT_TRUE(elf.ok());
  // Walk every symbol: each is found at its start and its last byte, and
  // the table is sorted without duplicate starts.
  const SymbolTable& table = elf->symbols;
  size_t checked = 0;
  for (uint64_t vaddr = 0; checked < 50; vaddr += 0x1000) {
    const SymbolTable::Symbol* s = table.Find(vaddr);
    if (s == nullptr) continue;
    EXPECT_EQ(table.Find(s->start), s);
    EXPECT_EQ(table.Find(s->start + s->size - 1), s);
    ++checked;
    if (vaddr > 0x10000000) break;
  }
  EXPECT_GT(checked, 10u);
}

TEST(ElfReaderTest, RejectsWhatIsNotA64BitElf) {
  EXPECT_THAT(ParseElf("").status().message(), HasSubstr("not an ELF file"));
  EXPECT_THAT(ParseElf("#!/bin/sh\necho hello\n").status().message(), HasSubstr("not an ELF file"));
  Elf64_Ehdr header{};
  std::memcpy(header.e_ident, ELFMAG, SELFMAG);
  header.e_ident[EI_CLASS] = ELFCLASS32;
  header.e_ident[EI_DATA] = ELFDATA2LSB;
  std::string image(reinterpret_cast<const char*>(&header), sizeof header);
  EXPECT_THAT(ParseElf(image).status().message(), HasSubstr("64-bit"));
}

TEST(ElfReaderTest, TruncatedFilesAreErrorsNotCrashes) {
  Result<MappedElfFile> file = MappedElfFile::Open("/proc/self/exe");
  ASSERT_TRUE(file.ok());
  std::string_view image = file->image();
  // Section headers live at the end of the file: cutting it loses them.
  Result<ElfInfo> cut = ParseElf(image.substr(0, image.size() / 2));
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(cut.status().message(), HasSubstr("truncated"));
  // Every prefix parses or fails cleanly (ASan watches the reads).
  for (size_t size = 0; size < 4096; size += 7) (void)ParseElf(image.substr(0, size));
}

TEST(ElfReaderTest, CorruptSectionHeadersAreErrors) {
  Result<MappedElfFile> file = MappedElfFile::Open("/proc/self/exe");
  ASSERT_TRUE(file.ok());
  std::string copy(file->image());
  Elf64_Ehdr header;
  std::memcpy(&header, copy.data(), sizeof header);
  header.e_shoff = copy.size() - 10;  // past the end
  std::memcpy(copy.data(), &header, sizeof header);
  EXPECT_THAT(ParseElf(copy).status().message(), HasSubstr("section headers"));

  std::memcpy(&header, file->image().data(), sizeof header);
  // Point every symbol table's string table link out of range.
  std::memcpy(copy.data(), &header, sizeof header);
  for (uint16_t i = 0; i < header.e_shnum; ++i) {
    Elf64_Shdr shdr;
    size_t at = header.e_shoff + i * sizeof shdr;
    std::memcpy(&shdr, copy.data() + at, sizeof shdr);
    if (shdr.sh_type == SHT_SYMTAB) {
      shdr.sh_link = 9999;
      std::memcpy(copy.data() + at, &shdr, sizeof shdr);
    }
  }
  EXPECT_THAT(ParseElf(copy).status().message(), HasSubstr("string table"));
}

TEST(ElfReaderTest, MissingFileIsNotFound) {
  Result<MappedElfFile> file = MappedElfFile::Open("/nonexistent/lib.so");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(MappedElfFile::Open("/proc").status().message(), HasSubstr("not a regular file"));
}

TEST(ElfReaderTest, DemanglesCxxNamesAndLeavesCNames) {
  EXPECT_EQ(Demangle("_ZN3foo3barEv"), "foo::bar()");
  EXPECT_EQ(Demangle("_ZN12_GLOBAL__N_17BurnCpuEi"), "(anonymous namespace)::BurnCpu(int)");
  EXPECT_EQ(Demangle("malloc"), "malloc");
  EXPECT_EQ(Demangle("memcpy@@GLIBC_2.14"), "memcpy");
  EXPECT_EQ(Demangle("_Znot_valid"), "_Znot_valid");
  EXPECT_EQ(Demangle("_ZN12_GLOBAL__N_17BurnCpuEi.constprop.0.isra.0"),
            "(anonymous namespace)::BurnCpu(int)");
}

}  // namespace
}  // namespace sleuth::profiles::internal
