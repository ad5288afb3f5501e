// Blocks of samples, batch innermost: the layout the CfC and LTC kernels compute in, so their inner
// loops run over BLOCK contiguous values and vectorise. A block holds `count` rows of BLOCK values
// (block[i * BLOCK + b] is value i of sample b); tensors hold samples one after the other
// (rows[b * count + i]). A block of the last samples may hold fewer than BLOCK of them (n).
#pragma once
#include <cstdint>

namespace blocks {

constexpr int64_t BLOCK = 16;

inline int64_t blocks_of(int64_t batch) { return (batch + BLOCK - 1) / BLOCK; }

// Calls visit(i, b) for value i of each of the n samples in a block of count values per sample.
template <typename Visit>
inline void for_each_value(int64_t count, int64_t n, Visit&& visit) {
  for (int64_t i = 0; i < count; ++i)
    for (int64_t b = 0; b < n; ++b) visit(i, b);
}

// block[i, b] = rows[b, i] for the n samples of rows (count values each).
template <typename scalar_t>
inline void to_block(const scalar_t* rows, int64_t count, int64_t n, scalar_t* block) {
  for_each_value(count, n, [&](int64_t i, int64_t b) { block[i * BLOCK + b] = rows[b * count + i]; });
}

// block[i, b] += rows[b, i].
template <typename scalar_t>
inline void add_to_block(const scalar_t* rows, int64_t count, int64_t n, scalar_t* block) {
  for_each_value(count, n, [&](int64_t i, int64_t b) { block[i * BLOCK + b] += rows[b * count + i]; });
}

// rows[b, i] = block[i, b].
template <typename scalar_t>
inline void from_block(const scalar_t* block, int64_t count, int64_t n, scalar_t* rows) {
  for_each_value(count, n, [&](int64_t i, int64_t b) { rows[b * count + i] = block[i * BLOCK + b]; });
}

// sums[i] += the n samples' values i of block: a parameter gradient's share of one block.
template <typename scalar_t>
inline void add_block_sums(const scalar_t* block, int64_t count, int64_t n, scalar_t* sums) {
  for_each_value(count, n, [&](int64_t i, int64_t b) { sums[i] += block[i * BLOCK + b]; });
}

}  // namespace blocks
