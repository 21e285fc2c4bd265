// A CPU burner with a known call chain, built with -O2 -fomit-frame-pointer
// (see CMakeLists.txt) so that only DWARF CFI unwinds it:
//   SleuthChainRun -> Outer -> Middle -> Leaf   (Leaf burns the CPU)
// The frames' functions are static; their names in the symbol table contain
// "SleuthChainOuter", "SleuthChainMiddle" and "SleuthChainLeaf".
#pragma once

#include <atomic>
#include <cstdint>

#include "sleuth/stacks/dwarf_unwinder.h"

// Burns CPU in SleuthChainLeaf until *stop is true.
uint64_t SleuthChainRun(const std::atomic<bool>* stop);

// Calls Outer -> Middle -> CaptureLeaf, which stores its own registers in
// *regs, sets *state to 1, and spins (no calls: its stack stays as it was)
// until *state is 2; then it returns.
void SleuthChainCapture(sleuth::stacks::Registers* regs, std::atomic<int>* state);
