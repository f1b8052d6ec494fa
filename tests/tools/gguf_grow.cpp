// Tests of tools/gguf_grow.hpp (the tandem-grow-gguf tool): a target grown from a draft
// computes the draft's logits at zero noise, and noise lowers greedy agreement. Models are
// written at test time by tools/gguf_writer.hpp and run through tandem::llama_session.
#include "gguf_grow.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "gguf_writer.hpp"
#include "model_eval.hpp"
#include "tandem/backends/llama_cpp.hpp"

namespace {

using tandem::errc;
namespace fs = std::filesystem;
namespace tt = tandem::tools;

// A directory of its own per test process (ctest runs test cases in parallel processes),
// removed at exit.
const fs::path& scratch() {
  static tandem_test::scratch_dir dir("tandem-grow-test-");
  return dir.path();
}

// A random 64-wide, 2-layer draft (4 heads of 16, 2 KV heads) with the built-in vocabulary.
const std::string& draft_path() {
  static const std::string path = [] {
    tandem::llama_quiet_logs(false);
    const std::string p = (scratch() / "draft.gguf").string();
    tt::tiny_llama_config cfg;
    cfg.seed = 11;
    cfg.n_ff = 128;
    cfg.logit_scale = 6.0f;  // peaked: few near-ties for noise to flip
    REQUIRE(tt::write_tiny_llama(p.c_str(), cfg, tt::builtin_vocab()) == errc::ok);
    return p;
  }();
  return path;
}

std::string grow(double noise, std::uint64_t seed = 3) {
  const std::string p =
      (scratch() / ("target-" + std::to_string(noise) + "-" + std::to_string(seed) + ".gguf"))
          .string();
  tt::grow_config cfg;
  cfg.n_embd = 256;
  cfg.n_layer = 4;
  cfg.n_ff = 512;
  cfg.noise = noise;
  cfg.seed = seed;
  auto r = tt::grow_llama(draft_path().c_str(), p.c_str(), cfg);
  REQUIRE(r);
  CHECK(r->n_head == 16);
  CHECK(r->n_head_kv == 8);
  return p;
}

const std::vector<std::string>& prompts() {
  static const std::vector<std::string> p = {
      "In the beginning God created the heaven and the earth.",
      "And the LORD spake unto Moses, saying,",
      "Blessed are the meek: for they shall inherit the earth.",
      "The LORD is my shepherd; I shall not want.",
      "And it came to pass in those days,",
      "For God so loved the world,",
  };
  return p;
}

tt::acceptance_result agreement(const std::string& target) {
  auto d = tandem::llama_model_handle::load(draft_path());
  REQUIRE(d);
  auto t = tandem::llama_model_handle::load(target);
  REQUIRE(t);
  auto r = tt::greedy_acceptance(*d, *t, prompts(), 32, 24, 2);
  REQUIRE(r);
  return *r;
}

std::string file_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("grow: with zero noise the grown target's logits equal the draft's",
          "[tools][grow][llama_cpp]") {
  const auto r = agreement(grow(0.0));
  CHECK(r.positions >= prompts().size() * 10);
  CHECK(r.max_abs_logit_diff < 1e-3);
  CHECK(r.matches == r.positions);
}

TEST_CASE("grow: greedy agreement with the draft falls as the noise rises",
          "[tools][grow][llama_cpp]") {
  const double low = agreement(grow(0.02)).rate;
  const double mid = agreement(grow(0.5)).rate;
  const double high = agreement(grow(5.0)).rate;
  INFO("agreement at noise 0.02, 0.5, 5: " << low << ", " << mid << ", " << high);
  CHECK(low >= 0.9);
  CHECK(low >= mid);
  CHECK(mid >= high);
  CHECK(high < 0.5);
}

TEST_CASE("grow: equal inputs and seeds give byte-identical targets, other seeds differ",
          "[tools][grow]") {
  const std::string a = file_bytes(grow(0.1, 5));
  const std::string b = (scratch() / "again.gguf").string();
  tt::grow_config cfg;
  cfg.n_embd = 256;
  cfg.n_layer = 4;
  cfg.n_ff = 512;
  cfg.noise = 0.1;
  cfg.seed = 5;
  REQUIRE(tt::grow_llama(draft_path().c_str(), b.c_str(), cfg));
  CHECK(file_bytes(b) == a);
  CHECK(file_bytes(grow(0.1, 6)) != a);
}

TEST_CASE("grow: shapes that cannot preserve the draft are refused with invalid_argument",
          "[tools][grow]") {
  const std::string out = (scratch() / "bad.gguf").string();
  tt::grow_config cfg;
  cfg.n_embd = 256;
  cfg.n_head = 8;  // head size 32, the draft's is 16
  CHECK(tt::grow_llama(draft_path().c_str(), out.c_str(), cfg).error() == errc::invalid_argument);
  cfg = {};
  cfg.n_embd = 32;  // narrower than the draft
  CHECK(tt::grow_llama(draft_path().c_str(), out.c_str(), cfg).error() == errc::invalid_argument);
  cfg = {};
  cfg.noise = -1.0;
  CHECK(tt::grow_llama(draft_path().c_str(), out.c_str(), cfg).error() == errc::invalid_argument);
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("grow: a missing draft is file_not_found and a non-GGUF one corrupt_file",
          "[tools][grow]") {
  const std::string out = (scratch() / "none.gguf").string();
  CHECK(tt::grow_llama((scratch() / "nope.gguf").string().c_str(), out.c_str(), {}).error() ==
        errc::file_not_found);
  const std::string junk = (scratch() / "junk.gguf").string();
  std::ofstream(junk) << "not a model";
  CHECK(tt::grow_llama(junk.c_str(), out.c_str(), {}).error() == errc::corrupt_file);
}
