// Private to sleuth::config: "did you mean" suggestions for misspelt keys
// and environment variables. Pure functions; thread safe.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace sleuth::config {

// Levenshtein distance (insertions, deletions and substitutions count 1),
// ignoring ASCII case.
size_t EditDistance(std::string_view a, std::string_view b);

// Words longer than this get no suggestion: no key is half as long, and
// EditDistance costs the product of the two lengths.
inline constexpr size_t kMaxSuggestedWordBytes = 128;

// The candidate closest to `word`, or "" when there are none or `word` is
// longer than kMaxSuggestedWordBytes. For dotted
// keys a right name in the wrong section ("memory.interval") finds its
// section ("agent.interval").
std::string NearestKey(std::string_view word, std::span<const std::string> candidates);

}  // namespace sleuth::config
