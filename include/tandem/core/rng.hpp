// tandem: the explicit, seeded random number generator every random choice takes.
#pragma once

#include <cstdint>
#include <limits>

#include "tandem/core/config.hpp"

namespace tandem::inline v0 {

/// xoshiro256** seeded through splitmix64. Small (32 bytes), fast, and identical on
/// every platform, so the same seed gives the same tokens everywhere. Satisfies
/// std::uniform_random_bit_generator. Not for cryptography.
class rng {
 public:
  /// The type of one draw: 64 random bits.
  using result_type = std::uint64_t;

  /// Seeds the generator; equal seeds give equal streams.
  explicit constexpr rng(std::uint64_t seed) noexcept { reseed(seed); }

  /// Restarts the stream as if freshly constructed with `seed`.
  constexpr void reseed(std::uint64_t seed) noexcept {
    std::uint64_t x = seed;
    for (auto& w : s_) {
      x += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      w = z ^ (z >> 31);
    }
  }

  /// Smallest value operator() returns (0).
  static constexpr result_type min() noexcept { return 0; }
  /// Largest value operator() returns (2^64 - 1).
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

  /// Next 64 random bits.
  constexpr result_type operator()() noexcept {
    const std::uint64_t out = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return out;
  }

  /// Uniform double in [0, 1) with 53 random bits.
  constexpr double uniform() noexcept { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

  /// Uniform integer in [0, n); n must be > 0. Rejection keeps it exactly uniform.
  constexpr std::uint64_t below(std::uint64_t n) noexcept {
    TANDEM_ASSERT(n > 0, "rng::below(0)");
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    std::uint64_t x = (*this)();
    while (x < threshold) x = (*this)();
    return x % n;
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }
  std::uint64_t s_[4]{};
};

}  // namespace tandem::inline v0
