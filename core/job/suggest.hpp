// suggest: "did you mean" for a mistyped name (a field, an option, a
// command): the closest known name by edit distance, when close enough to be
// a typo rather than another word.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcast {

// Levenshtein distance: insertions, deletions and substitutions.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The closest of `names` to `word` within max(2, |word| / 3) edits; empty
// when none is that close.
std::string closest_name(std::string_view word, const std::vector<std::string_view>& names);

}  // namespace fleetcast
