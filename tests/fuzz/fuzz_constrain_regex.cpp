// Fuzz target for the regex constraint compiler (tandem/constrain/regex.hpp): any pattern
// compiles or fails with a named error (with a column inside the pattern for syntax
// errors); a compiled constraint's state is consistent (mask agrees with allows, forced
// with the mask, advance with allows) along a token walk chosen by the input.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/constrain.hpp"

namespace {

const tandem::token_vocabulary& vocabulary() {
  static const tandem::token_vocabulary v = [] {
    std::vector<std::string> t;
    for (int b = 0; b < 256; ++b) t.emplace_back(1, static_cast<char>(b));
    for (const char* s : {"ab", "abc", "true", "false", "null", "12", "0.", "\"a", "\\\"", " a",
                          "\xC3\xA9", "\xE6\x97", "\xA5", "{\"", "\":", "xyz", ""})
      t.emplace_back(s);
    auto r = tandem::token_vocabulary::from_bytes(std::move(t), {272});
    if (!r) std::abort();
    return *std::move(r);
  }();
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The first byte steers the token walk; the rest is the pattern.
  if (size == 0) return 0;
  const std::uint8_t steer = data[0];
  const std::string_view pattern(reinterpret_cast<const char*>(data) + 1, size - 1);
  const tandem::token_vocabulary& vocab = vocabulary();
  tandem::constraint_options o;
  o.max_states = 2000;
  o.max_repeat = 64;
  o.max_nfa_states = std::size_t{1} << 16;
  tandem::error_info info;
  const auto r = tandem::compile_regex(pattern, vocab, o, &info);
  if (!r) {
    const tandem::errc e = r.error();
    if (e != tandem::errc::parse_error && e != tandem::errc::unsupported &&
        e != tandem::errc::constraint_too_large && e != tandem::errc::invalid_argument)
      std::abort();
    if (info.code != e) std::abort();
    if ((e == tandem::errc::parse_error || e == tandem::errc::unsupported) &&
        (info.line != 1 || info.column < 1 || info.column > pattern.size() + 1))
      std::abort();
    return 0;
  }
  tandem::constraint_state st(*r);
  std::vector<float> logits(vocab.size() + 3);
  std::uint32_t pick = steer;
  for (int step = 0; step < 16; ++step) {
    for (float& x : logits) x = 1.0f;
    if (st.mask(logits) != tandem::errc::ok) std::abort();
    std::vector<tandem::token_id> allowed;
    for (std::size_t t = 0; t < logits.size(); ++t) {
      const bool kept = !std::isinf(logits[t]);
      if (kept != st.allows(static_cast<tandem::token_id>(t))) std::abort();
      if (kept) allowed.push_back(static_cast<tandem::token_id>(t));
    }
    const tandem::token_id forced = allowed.size() == 1 ? allowed[0] : tandem::no_token;
    if (st.forced() != forced) std::abort();
    if (st.can_end() != st.allows(272)) std::abort();
    if (allowed.empty()) {
      if (!st.is_complete()) std::abort();  // a dead end: the index lets no token reach a match
      break;
    }
    pick = pick * 1103515245u + 12345u;
    const tandem::token_id t = allowed[(pick >> 8) % allowed.size()];
    if (st.advance(t) != tandem::errc::ok) std::abort();
    if (t == 272) {  // ended: complete, nothing allowed
      if (!st.is_complete() || st.allows(272) || st.forced() != tandem::no_token) std::abort();
      break;
    }
  }
  return 0;
}
