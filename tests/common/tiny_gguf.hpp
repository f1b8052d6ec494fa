// Test helper: writes a tiny random-weight llama GGUF model for a test with
// tools/gguf_writer.hpp (the test target needs the tools/ include directory and llama.cpp).
#pragma once

#include <filesystem>
#include <string>
#include <utility>

#include "common/catch.hpp"
#include "gguf_writer.hpp"
#include "tandem/backends/llama_cpp.hpp"

namespace tandem_test {

/// Writes the model `name` into `dir` with `cfg` and `vocab` (by default the built-in
/// vocabulary), REQUIREs that writing succeeded and returns the file's path.
inline std::string write_tiny_gguf(
    const std::filesystem::path& dir, const std::string& name,
    const tandem::tools::tiny_llama_config& cfg,
    const tandem::tools::vocab_spec& vocab = tandem::tools::builtin_vocab()) {
  const std::string p = (dir / name).string();
  REQUIRE(tandem::tools::write_tiny_llama(p.c_str(), cfg, vocab) == tandem::errc::ok);
  return p;
}

/// Writes the model as write_tiny_gguf() does, loads it, REQUIREs that loading succeeded
/// and returns the model.
inline tandem::llama_model_handle load_tiny_gguf(const std::filesystem::path& dir,
                                                 const std::string& name,
                                                 const tandem::tools::tiny_llama_config& cfg) {
  auto m = tandem::llama_model_handle::load(write_tiny_gguf(dir, name, cfg));
  REQUIRE(m.has_value());
  return std::move(*m);
}

}  // namespace tandem_test
