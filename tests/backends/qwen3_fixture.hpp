// Test helper for the Qwen3 vocabulary fixture (tools/make-qwen-gguf.sh): its paths, which
// tests/CMakeLists.txt passes as macros, a runner for the reference scripts (node, python3)
// and the sample (tests/backends/qwen3_sample.json).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/catch.hpp"
#include "tandem/backends/llama_cpp.hpp"

namespace tandem_test::qwen3 {

/// The cached GGUF (a link the CTest fixture "qwen3 vocabulary: the GGUF fixture is made"
/// places in the build folder).
inline const char* gguf_path() { return TANDEM_QWEN3_GGUF; }

/// Runs `command` through the shell and returns its standard output; REQUIREs exit 0.
inline std::string run(const std::string& command) {
  std::FILE* p = ::popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  INFO("command: " << command);
  REQUIRE(status == 0);
  return out;
}

inline std::string quoted(const std::string& s) { return "'" + s + "'"; }

/// The sample texts and message lists.
inline const nlohmann::json& sample() {
  static const nlohmann::json j = [] {
    std::FILE* f = std::fopen(TANDEM_QWEN3_SAMPLE, "rb");
    REQUIRE(f != nullptr);
    std::string text;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
    std::fclose(f);
    return nlohmann::json::parse(text);
  }();
  return j;
}

/// The package's own tokenizer's output (tests/backends/qwen3_reference.mjs), run once.
inline const nlohmann::json& node_reference() {
  static const nlohmann::json j = nlohmann::json::parse(
      run(quoted(TANDEM_NODE) + " " + quoted(TANDEM_QWEN3_REFERENCE_MJS) + " " +
          quoted(TANDEM_QWEN3_VOCAB_DIR) + " " + quoted(TANDEM_QWEN3_SAMPLE)));
  return j;
}

/// The model, loaded once per process (vocabulary and weights: the weights are tiny).
inline const tandem::llama_model_handle& model() {
  static const tandem::llama_model_handle m = [] {
    tandem::llama_quiet_logs();
    tandem::error_info info;
    auto r = tandem::llama_model_handle::load(gguf_path(), {}, &info);
    INFO(std::string(info.context()));
    REQUIRE(r);
    return std::move(*r);
  }();
  return m;
}

inline std::vector<tandem::token_id> ids_of(const nlohmann::json& a) {
  std::vector<tandem::token_id> v;
  for (const auto& x : a) v.push_back(x.get<tandem::token_id>());
  return v;
}

}  // namespace tandem_test::qwen3
