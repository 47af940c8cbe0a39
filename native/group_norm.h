// GroupNorm group count of the small heads (GAN head, evaluation classifier): 32 as DMD2 (768 channels
// -> 24 per group), fewer when that would leave under 8 channels per group (after a 1x1 reduction a
// group of 1-2 channels would normalise to a constant).
#pragma once
#include <cstdint>

namespace dmd {

inline int64_t headGroups(int64_t channels) {
  for (int64_t g = 32; g > 1; --g)
    if (channels % g == 0 && channels / g >= 8) return g;
  return 1;
}

}  // namespace dmd
