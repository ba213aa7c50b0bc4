#pragma once
// Levenshtein distance, for "did you mean ...?" hints (config keys, subcommands).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace quopt {

std::size_t levenshtein(std::string_view a, std::string_view b);

// The candidate nearest to `word` when it is within max(2, |word| / 3) edits (the first of equally near
// ones), else nullopt. A transposition ("trian" for "train") counts as two edits.
std::optional<std::string> closest_word(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace quopt
