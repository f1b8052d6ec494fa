// The scheduler over llama.cpp's multi-sequence session, in both KV layouts: requests
// joining and leaving in random orders give the greedy tokens of lone llama_sessions (with
// the plain and the speculative scheduler), and k samples from one prefill equal lone runs.
#include <cstdint>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "batch/scheduler_property.hpp"
#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "common/tiny_gguf.hpp"
#include "tandem/backends/llama_cpp.hpp"
#include "tandem/batch.hpp"

namespace {

using tandem::errc;
using tandem::token_id;

const tandem::llama_model_handle& tiny_model() {
  static tandem_test::scratch_dir dir("tandem-batch-llama-");
  static tandem::llama_model_handle model = [] {
    tandem::llama_quiet_logs(true);
    tandem::tools::tiny_llama_config cfg;
    cfg.seed = 7;
    return tandem_test::load_tiny_gguf(dir.path(), "tiny.gguf", cfg);
  }();
  return model;
}

// Both KV layouts of llama_multi_session, for GENERATE.
tandem::kv_layout any_layout() {
  return GENERATE(tandem::kv_layout::per_sequence, tandem::kv_layout::unified);
}

// A multi-sequence session of `n` sequences over `model` (256 tokens of context) in `layout`.
tandem::llama_multi_session multi(const tandem::llama_model_handle& model, std::uint32_t n,
                                  tandem::kv_layout layout) {
  auto m = tandem::llama_multi_session::create(
      model,
      {.session = {.context_size = 256, .threads = 1}, .max_sequences = n, .layout = layout});
  REQUIRE(m);
  return std::move(*m);
}

tandem::llama_session lone_session() {
  auto s = tandem::llama_session::create(tiny_model(), {.context_size = 256, .threads = 1});
  REQUIRE(s);
  return std::move(*s);
}

}  // namespace

TEST_CASE("scheduler: random join, leave and cancel orders give the tokens of lone llama.cpp runs",
          "[batch][scheduler][llama_cpp]") {
  // Batched logits differ from a lone session's by rounding (docs/batching.md: about 2e-3),
  // so log-probabilities are not compared bit for bit; the sampled tokens must agree.
  const tandem::kv_layout layout = any_layout();
  CAPTURE(static_cast<int>(layout));
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    auto m = multi(tiny_model(), 4, layout);
    tandem_test::check_scheduler_equals_lone(m, [] { return lone_session(); },
                                             {.seed = seed,
                                              .requests = 8,
                                              .max_prompt = 16,
                                              .max_new = 8,
                                              .max_requests = 5,
                                              .compare_logprobs = false});
  }
}

TEST_CASE(
    "speculative scheduler: greedy requests joining and leaving give the tokens of lone "
    "llama.cpp runs",
    "[batch][speculative][llama_cpp]") {
  // The draft: the same tiny model in its own context (every draft accepted, up to rounding)
  // for odd seeds, a differently seeded tiny model (most drafts rejected) for even ones.
  static tandem_test::scratch_dir dir("tandem-batch-llama-draft-");
  static const tandem::llama_model_handle other = [] {
    tandem::tools::tiny_llama_config cfg;
    cfg.seed = 8;
    return tandem_test::load_tiny_gguf(dir.path(), "draft.gguf", cfg);
  }();
  const tandem::kv_layout layout = any_layout();
  CAPTURE(static_cast<int>(layout));
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    auto m = multi(tiny_model(), 4, layout);
    auto d = multi(seed % 2 == 1 ? tiny_model() : other, 4, layout);
    tandem::speculative_scheduler_options spec;
    spec.fixed_draft = seed <= 2 ? 3 : 0;
    tandem_test::check_scheduler_equals_lone_with(
        m, [] { return lone_session(); },
        {.seed = seed,
         .requests = 8,
         .max_prompt = 16,
         .max_new = 12,
         .max_requests = 4,
         .compare_logprobs = false,
         .greedy_only = true},
        [&](auto& model, const tandem::scheduler_options& so) {
          return tandem::speculative_scheduler<std::remove_reference_t<decltype(model)>,
                                               tandem::llama_multi_session, tandem::sampler_chain>(
              model, d, so, spec);
        });
  }
}

TEST_CASE(
    "speculative scheduler: a llama.cpp draft of the same model is accepted and cuts the "
    "target passes",
    "[batch][speculative][llama_cpp]") {
  const tandem::kv_layout layout = any_layout();
  CAPTURE(static_cast<int>(layout));
  auto m = multi(tiny_model(), 2, layout);
  auto d = multi(tiny_model(), 2, layout);
  tandem::speculative_scheduler_options spec;
  spec.fixed_draft = 4;
  tandem::speculative_scheduler<tandem::llama_multi_session, tandem::llama_multi_session,
                                tandem::greedy_sampler>
      sch(m, d, {.max_requests = 2}, spec);
  const std::vector<token_id> p0 = {5, 80, 200, 12}, p1 = {7, 7, 31};
  const auto a = sch.submit({p0, {}, tandem_test::budget(20)});
  const auto b = sch.submit({p1, {}, tandem_test::budget(20)});
  REQUIRE(a);
  REQUIRE(b);
  tandem_test::run(sch);
  for (const auto& [id, prompt] : {std::pair{*a, p0}, std::pair{*b, p1}}) {
    tandem::completion got, want;
    REQUIRE(sch.take(id, got) == errc::ok);
    auto lone = lone_session();
    tandem::greedy_sampler g;
    REQUIRE(tandem::generate(lone, g, prompt, tandem_test::budget(20), want) == errc::ok);
    CHECK(got.tokens == want.tokens);
  }
  CHECK(sch.speculative_stats().accepted > 10);
  CHECK(sch.stats().forward_passes < 20);
}

TEST_CASE("sample_k: k greedy samples from one llama.cpp prefill equal a lone run",
          "[batch][sample_k][llama_cpp]") {
  const tandem::kv_layout layout = any_layout();
  CAPTURE(static_cast<int>(layout));
  auto m = multi(tiny_model(), 5, layout);
  const std::vector<token_id> prompt = {5, 80, 200, 12, 99, 4};
  tandem::generation_options o;
  o.max_tokens = 10;
  std::vector<tandem::completion> out(4);
  REQUIRE(tandem::sample_k(
              m, prompt, [](std::size_t) { return tandem::greedy_sampler{}; }, o,
              std::span<tandem::completion>(out)) == errc::ok);
  auto lone = lone_session();
  tandem::greedy_sampler g;
  tandem::completion want;
  REQUIRE(tandem::generate(lone, g, prompt, o, want) == errc::ok);
  for (const auto& c : out) CHECK(c.tokens == want.tokens);
}
