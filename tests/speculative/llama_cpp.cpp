// Speculative decoding through the llama.cpp adapter: random-weight GGUF model pairs
// (same built-in vocabulary, different sizes and seeds) written at test time by
// tools/gguf_writer.hpp. Greedy speculative output must equal target-only greedy output.
#include <filesystem>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "common/tiny_gguf.hpp"
#include "gguf_writer.hpp"
#include "tandem/backends/llama_cpp.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative.hpp"

namespace {

using tandem::completion;
using tandem::errc;
using tandem::token_id;
namespace fs = std::filesystem;

const fs::path& scratch() {
  static tandem_test::scratch_dir dir("tandem-spec-test-");
  return dir.path();
}

tandem::llama_model_handle make_model(const char* name, std::uint32_t embd, std::uint32_t layers,
                                      std::uint64_t seed) {
  tandem::llama_quiet_logs();
  tandem::tools::tiny_llama_config cfg;
  cfg.n_embd = embd;
  cfg.n_layer = layers;
  cfg.n_ff = 2 * embd;
  cfg.seed = seed;
  const std::string p = tandem_test::write_tiny_gguf(scratch(), name, cfg);
  auto m = tandem::llama_model_handle::load(p);
  REQUIRE(m.has_value());
  return std::move(*m);
}

tandem::llama_session make_session(const tandem::llama_model_handle& m) {
  tandem::llama_session_options o;
  o.threads = 1;  // deterministic reductions
  o.context_size = 256;
  auto s = tandem::llama_session::create(m, o);
  REQUIRE(s.has_value());
  return std::move(*s);
}

tandem::sampler_chain greedy_chain() {
  tandem::sampler_chain c(0);
  REQUIRE(c.add(tandem::sampling::greedy{}) == errc::ok);
  return c;
}

TEST_CASE("speculative llama.cpp: greedy output equals target-only greedy for GGUF pairs",
          "[speculative][llama_cpp]") {
  const auto target_model = make_model("target.gguf", 96, 3, 11);
  const auto small_model = make_model("draft.gguf", 64, 2, 7);
  const std::vector<std::vector<token_id>> prompts = {
      {1, 300, 301, 302, 7, 120}, {1, 42}, {1, 200, 259, 42, 42, 17, 300, 5}};
  tandem::generation_options g;
  g.max_tokens = 32;
  g.record_logprobs = false;
  for (const auto& prompt : prompts) {
    auto ref = make_session(target_model);
    auto s0 = greedy_chain();
    completion want;
    REQUIRE(tandem::generate(ref, s0, prompt, g, want) == errc::ok);
    REQUIRE(want.tokens.size() == 32);
    for (std::size_t len : {1u, 4u, 8u}) {
      // An independent draft (acceptance near 0) and the target itself as its own draft
      // (acceptance near 1): both paths of verification.
      for (const auto* dm : {&small_model, &target_model}) {
        auto target = make_session(target_model);
        auto draft = make_session(*dm);
        tandem::model_drafter drafter(draft, greedy_chain());
        tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{len});
        auto s = greedy_chain();
        completion got;
        REQUIRE(dec.generate(s, prompt, g, got) == errc::ok);
        INFO("draft length " << len << (dm == &target_model ? ", self-draft" : ", independent"));
        CHECK(got.tokens == want.tokens);
        CHECK(target.size() == prompt.size() + got.tokens.size() - 1);
        if (dm == &target_model) CHECK(dec.stats().acceptance_rate() > 0.9);
      }
    }
  }
}

TEST_CASE("speculative llama.cpp: the cost model keeps greedy exact with an independent draft",
          "[speculative][llama_cpp]") {
  const auto target_model = make_model("target2.gguf", 96, 3, 13);
  const auto small_model = make_model("draft2.gguf", 64, 2, 5);
  const std::vector<token_id> prompt = {1, 300, 301, 302};
  tandem::generation_options g;
  g.max_tokens = 64;
  auto ref = make_session(target_model);
  auto s0 = greedy_chain();
  completion want;
  REQUIRE(tandem::generate(ref, s0, prompt, g, want) == errc::ok);
  auto target = make_session(target_model);
  auto draft = make_session(small_model);
  tandem::model_drafter drafter(draft, greedy_chain());
  tandem::speculative_decoder dec(target, drafter, tandem::cost_model_draft{});
  auto s = greedy_chain();
  completion got;
  REQUIRE(dec.generate(s, prompt, g, got) == errc::ok);
  CHECK(got.tokens == want.tokens);
}

TEST_CASE("speculative llama.cpp: sessions without flash attention keep greedy exact",
          "[speculative][llama_cpp]") {
  const auto target_model = make_model("target3.gguf", 96, 3, 17);
  const auto small_model = make_model("draft3.gguf", 64, 2, 19);
  tandem::llama_session_options o;
  o.threads = 1;
  o.context_size = 256;
  o.flash_attention = 2;
  CHECK(tandem::llama_session::create(target_model, o).error() == errc::invalid_argument);
  o.flash_attention = 0;  // off: cheaper multi-token passes on CPU at long contexts
  const auto session = [&](const tandem::llama_model_handle& m) {
    auto s = tandem::llama_session::create(m, o);
    REQUIRE(s.has_value());
    return std::move(*s);
  };
  const std::vector<token_id> prompt = {1, 300, 301, 302};
  tandem::generation_options g;
  g.max_tokens = 48;
  auto ref = session(target_model);
  auto s0 = greedy_chain();
  completion want;
  REQUIRE(tandem::generate(ref, s0, prompt, g, want) == errc::ok);
  for (const auto* dm : {&small_model, &target_model}) {
    auto target = session(target_model);
    auto draft = session(*dm);
    tandem::model_drafter drafter(draft, greedy_chain());
    tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{6});
    auto s = greedy_chain();
    completion got;
    REQUIRE(dec.generate(s, prompt, g, got) == errc::ok);
    CHECK(got.tokens == want.tokens);
  }
}

}  // namespace
