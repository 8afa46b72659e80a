// tokenizer/pretokenizer.h: GPT-2's pre-tokenization, written out by hand.
//
// GPT-2 (and r50k_base, and Hugging Face's ByteLevel pre-tokenizer with use_regex) first splits
// text with the regular expression
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// and then runs BPE inside each piece. SplitGpt2 produces exactly the pieces that expression
// finds (leftmost alternative first, greedy, with the look-ahead's backtracking), without a regex
// engine: a run of white space followed by a non-space keeps its last space for the next piece
// (" hello"), the contractions are ASCII and case-sensitive, and the optional leading space is
// U+0020 only.
#pragma once

#include <string_view>
#include <vector>

namespace strun::tokenizer {

// Appends the pieces of `text`, in order; their concatenation is `text`.
void SplitGpt2(std::string_view text, std::vector<std::string_view>* pieces);

}  // namespace strun::tokenizer
