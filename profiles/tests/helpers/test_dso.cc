// A shared library the symbolizer tests dlopen (from a copy they may then
// delete) to check shared-library address translation and .symtab reading.
namespace sleuth_test_dso {

// Local to the library: only .symtab names it.
__attribute__((noinline)) static int LocalHelper(int x) {
  asm volatile("" ::: "memory");
  return x * 3 + 1;
}

__attribute__((noinline)) int Exported(int x) {
  return LocalHelper(x) + 2;
}

}  // namespace sleuth_test_dso

// The test finds these by dlsym.
extern "C" __attribute__((visibility("default"))) int sleuth_test_dso_entry(int x) {
  return sleuth_test_dso::Exported(x);
}

extern "C" __attribute__((visibility("default"))) void* sleuth_test_dso_local_helper() {
  return reinterpret_cast<void*>(&sleuth_test_dso::LocalHelper);
}
