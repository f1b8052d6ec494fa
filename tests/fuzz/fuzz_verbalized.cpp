// Fuzz target for the confidence block's untrusted inputs: the verbalized-confidence
// parser (a found value lies in [0, 1] at an offset inside the text) and the calibrator
// and learned-evaluator file readers (any bytes load or fail with a named error).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tandem/confidence/calibration.hpp"
#include "tandem/confidence/learned.hpp"
#include "tandem/confidence/verbalized.hpp"
#include "tandem/core/detail/bytes.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (const auto c = tandem::parse_verbalized_confidence(text)) {
    if (!(c->value >= 0.0 && c->value <= 1.0) || c->position >= size) std::abort();
  }
  if (const auto cal = tandem::calibrator::from_bytes(tandem::detail::as_bytes(text))) {
    const auto p = cal->apply(0.5);
    if (p && !(*p >= 0.0 && *p <= 1.0)) std::abort();
  } else if (cal.error() != tandem::errc::corrupt_file &&
             cal.error() != tandem::errc::unsupported_version) {
    std::abort();
  }
  if (const auto m = tandem::learned_evaluator::from_bytes(tandem::detail::as_bytes(text))) {
    (void)m->nonzero_weights();
  } else if (m.error() != tandem::errc::corrupt_file &&
             m.error() != tandem::errc::unsupported_version) {
    std::abort();
  }
  return 0;
}
