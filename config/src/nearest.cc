#include "nearest.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <utility>
#include <vector>

namespace sleuth::config {
namespace {

std::string_view Leaf(std::string_view key) {
  size_t dot = key.rfind('.');
  return dot == std::string_view::npos ? key : key.substr(dot + 1);
}

}  // namespace

size_t EditDistance(std::string_view a, std::string_view b) {
  // ASCII only, without the locale lookup of std::tolower.
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  auto same = [&](char x, char y) { return lower(x) == lower(y); };
  // One row of the dynamic-programming table at a time.
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] =
          std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same(a[i - 1], b[j - 1]) ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string NearestKey(std::string_view word, std::span<const std::string> candidates) {
  std::string best;
  // The cost is the product of the lengths: a huge word is no misspelling.
  if (word.size() > kMaxSuggestedWordBytes) return best;
  std::pair<size_t, size_t> best_score = {std::numeric_limits<size_t>::max(), 0};
  for (const std::string& candidate : candidates) {
    // The right name in the wrong section counts as two edits, so
    // "memory.interval" finds "agent.interval" while "memroy.abs" (two
    // edits from memory.abs) still prefers its own section.
    bool same_leaf = Leaf(word).size() == Leaf(candidate).size() &&
                     EditDistance(Leaf(word), Leaf(candidate)) == 0;
    // The distance is at least the difference in length: skip what cannot
    // beat the best so far (most candidates, for a long word).
    size_t length_gap = word.size() > candidate.size() ? word.size() - candidate.size()
                                                       : candidate.size() - word.size();
    if (!same_leaf && length_gap > best_score.first) continue;
    size_t distance = EditDistance(word, candidate);
    size_t score = distance;
    if (same_leaf) score = std::min<size_t>(score, 2);
    std::pair<size_t, size_t> ranked = {score, distance};
    if (ranked < best_score) {
      best_score = ranked;
      best = candidate;
    }
  }
  return best;
}

}  // namespace sleuth::config
