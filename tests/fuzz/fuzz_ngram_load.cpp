// libFuzzer target: tandem::ngram_model::from_bytes on arbitrary bytes. Every input is
// parsed three times, as given and with its checksum recomputed as a frame (version 2)
// and as a version 1 header, so that mutations also reach the structural checks behind
// the checksum. A model that loads must answer queries without undefined behaviour, give
// normalised distributions and serialise back to the same bytes (a version 1 input: to
// bytes that load and serialise to themselves).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "tandem/backends/ngram_model.hpp"

#include "common/frame_checksum.hpp"

namespace {

void exercise(std::span<const std::byte> bytes) {
  auto m = tandem::ngram_model::from_bytes(bytes);
  if (!m) return;
  const std::vector<std::byte> again = m->to_bytes();
  const bool version1 = bytes.size() >= 12 && bytes[8] == std::byte{1};
  if (version1) {
    const auto reloaded = tandem::ngram_model::from_bytes(again);
    if (!reloaded || reloaded->to_bytes() != again) __builtin_trap();
  } else if (again.size() != bytes.size() ||
             std::memcmp(again.data(), bytes.data(), bytes.size()) != 0) {
    __builtin_trap();
  }

  // Tokens taken from the input itself, folded into the vocabulary.
  const std::size_t v = m->vocab_size();
  std::vector<tandem::token_id> tokens;
  for (std::size_t i = 0; i < bytes.size() && tokens.size() < 12; i += 7)
    tokens.push_back(static_cast<tandem::token_id>(static_cast<std::size_t>(bytes[i]) % v));

  tandem::ngram_session s(*m, 64);
  for (tandem::token_id t : tokens) {
    if (s.append(std::span<const tandem::token_id>(&t, 1)) != tandem::errc::ok) __builtin_trap();
    double sum = 0;
    for (float x : s.logits()) sum += std::exp(static_cast<double>(x));
    if (!(std::abs(sum - 1.0) < 1e-2)) __builtin_trap();
    const auto lp = m->log_prob(s.tokens(), t);
    if (!lp || std::isnan(*lp)) __builtin_trap();
  }
  (void)m->score_sentence(tokens);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  exercise(bytes);
  const std::vector<std::byte> copy(bytes.begin(), bytes.end());
  exercise(tandem_test::with_frame_checksum(copy));
  exercise(tandem_test::with_ngram_v1_checksum(copy));
  return 0;
}
