// Half of the mixed-target test (simd_mixed.cpp): this file is compiled for a wider
// instruction set (-mavx2 -mfma) than the rest of the program. It comes first on the link
// line, so where the two units' SIMD helpers had the same names, the linker would keep this
// file's 32-byte versions for the 16-byte callers of the other unit too.
#include <span>

#include "tandem/core/logits.hpp"

float mixed_wide_total_variation(std::span<const float> p, std::span<const float> q) {
  auto tv = tandem::kernels::total_variation(p, q);
  return tv ? *tv : -1.0f;
}

tandem::errc mixed_wide_softmax(std::span<const float> in, std::span<float> out) {
  return tandem::kernels::softmax(in, out);
}

const char* mixed_wide_backend() { return tandem::detail::simd::backend_name(); }
