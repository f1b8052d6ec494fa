// Tests of the one-call path over GGUF files: open_llama (<tandem/backends/llama_cpp_text.hpp>)
// and <tandem/text.hpp>, on tiny random-weight models.
#include "tandem/backends/llama_cpp_text.hpp"

#include <string>
#include <string_view>

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "common/tiny_gguf.hpp"
#include "tandem/text.hpp"

using tandem::errc;

namespace {

tandem::llama_text_options one_thread() {
  tandem::llama_text_options o;
  o.session.threads = 1;
  o.session.context_size = 256;
  return o;
}

}  // namespace

TEST_CASE(
    "llama_text: a GGUF file opens in one call and gives plain, speculative and contrastive text",
    "[llama_cpp][text]") {
  tandem_test::scratch_dir dir("tandem-llama-text-");
  tandem::llama_quiet_logs(false);
  tandem::tools::tiny_llama_config cfg;
  cfg.seed = 7;
  const std::string target_path = tandem_test::write_tiny_gguf(dir.path(), "target.gguf", cfg);
  cfg.seed = 8;
  const std::string draft_path = tandem_test::write_tiny_gguf(dir.path(), "draft.gguf", cfg);

  tandem::error_info info;
  auto target = tandem::open_llama(target_path, one_thread(), &info);
  auto draft = tandem::open_llama(draft_path, one_thread(), &info);
  REQUIRE(target);
  REQUIRE(draft);
  tandem::generate_request req{.prompt = "Hello"};
  req.options.max_tokens = 8;
  req.options.stop_tokens = {};
  auto plain = tandem::complete(*target, req, &info);
  REQUIRE(plain);
  CHECK(plain->tokens.size() > 0);
  auto again = tandem::complete(*target, req, &info);  // fresh prompt: same answer
  REQUIRE(again);
  CHECK(again->tokens == plain->tokens);
  auto fast = tandem::complete_speculative(*target, *draft, req, &info);
  REQUIRE(fast);
  CHECK(fast->tokens == plain->tokens);
  auto contrast = tandem::complete_contrastive(*target, *draft, req, {}, &info);
  REQUIRE(contrast);
  CHECK(contrast->tokens.size() > 0);
}

TEST_CASE("llama_text: a missing file or a directory names its path", "[llama_cpp][text][errors]") {
  tandem_test::scratch_dir dir("tandem-llama-text-");
  tandem::error_info info;
  const std::string missing = (dir.path() / "missing.gguf").string();
  auto a = tandem::open_llama(missing, {}, &info);
  REQUIRE(!a);
  CHECK(a.error() == errc::file_not_found);
  CHECK(info.context().find(missing) != std::string_view::npos);
  auto b = tandem::open_llama(dir.path().string(), {}, &info);
  REQUIRE(!b);
  CHECK(b.error() == errc::invalid_argument);
  CHECK(info.context().find(dir.path().string()) != std::string_view::npos);
}
