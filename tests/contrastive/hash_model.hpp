// Test helper for the contrastive block: a deterministic model whose next-token logits are
// a fixed pseudo-random function of (seed, context length, last token), spread over
// [0, spread), so that several tokens are plausible and two seeds disagree. Optional
// failures: an append call that fails, rewinds that fail, no rewind at all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/types.hpp"

namespace tandem_test {

struct hash_options {
  std::size_t vocab = 32;
  std::uint64_t seed = 1;
  float spread = 4.0f;
  /// The append (or score) call with this index fails with decode_failed.
  std::size_t fail_at_append = static_cast<std::size_t>(-1);
  /// Every rewind fails with rewind_failed (context unchanged).
  bool fail_rewind = false;
  /// Tokens whose logit is always -inf.
  std::vector<tandem::token_id> masked{};
};

template <bool Rewind>
class basic_hash_model {
 public:
  explicit basic_hash_model(hash_options o = {}) : o_(std::move(o)), logits_(o_.vocab) {
    ctx_.reserve(1024);
  }
  std::size_t vocab_size() const noexcept { return o_.vocab; }
  std::size_t size() const noexcept { return ctx_.size(); }
  std::span<const float> logits() const noexcept { return logits_; }
  std::span<const tandem::token_id> tokens() const noexcept { return ctx_; }
  std::size_t append_calls = 0;

  tandem::errc append(std::span<const tandem::token_id> t) {
    if (append_calls++ == o_.fail_at_append) return tandem::errc::decode_failed;
    if (tandem::errc e = check(t); e != tandem::errc::ok) return e;
    ctx_.insert(ctx_.end(), t.begin(), t.end());
    fill(logits_, ctx_.size(), ctx_.back());
    return tandem::errc::ok;
  }
  tandem::errc score(std::span<const tandem::token_id> t, std::span<float> rows) {
    if (append_calls++ == o_.fail_at_append) return tandem::errc::decode_failed;
    if (rows.size() != t.size() * o_.vocab) return tandem::errc::size_mismatch;
    if (tandem::errc e = check(t); e != tandem::errc::ok) return e;
    for (std::size_t i = 0; i < t.size(); ++i)
      fill(rows.subspan(i * o_.vocab, o_.vocab), ctx_.size() + i + 1, t[i]);
    ctx_.insert(ctx_.end(), t.begin(), t.end());
    fill(logits_, ctx_.size(), ctx_.back());
    return tandem::errc::ok;
  }
  tandem::errc rewind(std::size_t n) requires Rewind {
    if (n > ctx_.size()) return tandem::errc::rewind_out_of_range;
    if (o_.fail_rewind) return tandem::errc::rewind_failed;
    ctx_.resize(ctx_.size() - n);
    return tandem::errc::ok;
  }
  hash_options& options() noexcept { return o_; }

  /// The logits after a context of n tokens ending in `last`.
  void fill(std::span<float> out, std::size_t n, tandem::token_id last) const noexcept {
    for (std::size_t j = 0; j < out.size(); ++j) {
      std::uint64_t h = o_.seed * 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full) ^
                        (static_cast<std::uint64_t>(last) << 32) ^ j;
      h ^= h >> 31;
      h *= 0xBF58476D1CE4E5B9ull;
      h ^= h >> 29;
      out[j] = o_.spread * static_cast<float>(h >> 40) / static_cast<float>(1u << 24);
    }
    for (tandem::token_id m : o_.masked)
      out[static_cast<std::size_t>(m)] = -std::numeric_limits<float>::infinity();
  }

 private:
  tandem::errc check(std::span<const tandem::token_id> t) const noexcept {
    if (t.empty()) return tandem::errc::empty_input;
    for (auto x : t)
      if (x < 0 || static_cast<std::size_t>(x) >= o_.vocab) return tandem::errc::invalid_token;
    return tandem::errc::ok;
  }
  hash_options o_;
  std::vector<tandem::token_id> ctx_;
  std::vector<float> logits_;
};

using hash_model = basic_hash_model<true>;
using hash_model_no_rewind = basic_hash_model<false>;
static_assert(tandem::Rewindable<hash_model> && tandem::Scoring<hash_model>);
static_assert(!tandem::Rewindable<hash_model_no_rewind> && tandem::Scoring<hash_model_no_rewind>);

}  // namespace tandem_test
