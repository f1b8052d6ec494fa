// tandem tools: command-line parsing shared by the tools that write tiny GGUF models
// (tandem-make-gguf, tandem-vocab-gguf).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "gguf_writer.hpp"

namespace tandem::inline v0::tools {

/// Parses a decimal command-line value into `out`: false (and `out` unchanged) unless `s` is
/// all digits and fits 32 bits.
inline bool parse_u32(const char* s, std::uint32_t& out) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0' || v > 0xFFFFFFFFull) return false;
  out = static_cast<std::uint32_t>(v);
  return true;
}

/// The dimension of `cfg` that a shape flag names (--n-embd, --n-layer, --n-head,
/// --n-head-kv, --n-ff, --n-ctx-train), or null for any other flag.
inline std::uint32_t* shape_field(tiny_llama_config& cfg, const char* flag) {
  struct entry {
    const char* flag;
    std::uint32_t tiny_llama_config::*field;
  };
  static constexpr entry table[] = {
      {"--n-embd", &tiny_llama_config::n_embd}, {"--n-layer", &tiny_llama_config::n_layer},
      {"--n-head", &tiny_llama_config::n_head}, {"--n-head-kv", &tiny_llama_config::n_head_kv},
      {"--n-ff", &tiny_llama_config::n_ff},     {"--n-ctx-train", &tiny_llama_config::n_ctx_train},
  };
  for (const entry& e : table)
    if (std::strcmp(flag, e.flag) == 0) return &(cfg.*e.field);
  return nullptr;
}

}  // namespace tandem::inline v0::tools
