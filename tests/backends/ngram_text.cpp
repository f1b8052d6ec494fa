// Tests of the one-call path (<tandem/text.hpp>) over byte-level n-gram models opened from
// text (<tandem/backends/ngram_text.hpp>), and of its errors' context.
#include "tandem/backends/ngram_text.hpp"

#include <string>
#include <string_view>

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "common/small_ngram.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/text.hpp"

using tandem::errc;

namespace {
constexpr std::string_view corpus =
    "in the beginning god created the heaven and the earth\n"
    "and the earth was without form and void\n"
    "and darkness was upon the face of the deep\n"
    "and god said let there be light and there was light\n";
}  // namespace

TEST_CASE("text: a model opened from a corpus completes a prompt, the same on every call",
          "[text][ngram]") {
  auto m = tandem::open_ngram_text(corpus, {.order = 6});
  REQUIRE(m);
  tandem::generate_request req{.prompt = "and god sa"};
  req.options.max_tokens = 12;
  auto a = tandem::complete(*m, req);
  REQUIRE(a);
  CHECK(a->text.size() == 12);
  CHECK(a->text.substr(0, 2) == "id");  // the only continuation the corpus knows
  auto b = tandem::complete(*m, req);   // a fresh prompt, not a continuation
  REQUIRE(b);
  CHECK(b->text == a->text);
}

TEST_CASE("text: speculative and contrastive completions from two opened models", "[text][ngram]") {
  auto large = tandem::open_ngram_text(corpus, {.order = 6});
  auto small = tandem::open_ngram_text(corpus, {.order = 2});
  REQUIRE(large);
  REQUIRE(small);
  tandem::generate_request req{.prompt = "and the ea"};
  req.options.max_tokens = 16;
  auto plain = tandem::complete(*large, req);
  auto fast = tandem::complete_speculative(*large, *small, req);
  REQUIRE(plain);
  REQUIRE(fast);
  CHECK(fast->text == plain->text);  // greedy speculative output is the target's own

  auto contrast = tandem::complete_contrastive(*large, *small, req);
  REQUIRE(contrast);
  CHECK(contrast->tokens.size() == 16);
  tandem::error_info info;
  auto bad = tandem::complete_contrastive(*large, *small, req, {.alpha = 2.0f}, &info);
  REQUIRE(!bad);
  CHECK(bad.error() == errc::invalid_argument);
  CHECK(info.code == errc::invalid_argument);
}

TEST_CASE("text: opening a missing file, a directory or an empty corpus names the problem",
          "[text][ngram][errors]") {
  tandem_test::scratch_dir dir("tandem-ngram-text-");
  tandem::error_info info;
  const std::string missing = (dir.path() / "missing.txt").string();
  auto a = tandem::open_ngram_text_file(missing, {}, &info);
  REQUIRE(!a);
  CHECK(a.error() == errc::file_not_found);
  CHECK(info.context().find(missing) != std::string_view::npos);

  auto b = tandem::open_ngram_text_file(dir.path().string(), {}, &info);
  REQUIRE(!b);
  CHECK(b.error() == errc::invalid_argument);
  CHECK(info.context().find(dir.path().string()) != std::string_view::npos);

  const std::string empty = (dir.path() / "empty.txt").string();
  REQUIRE(tandem::detail::write_file(empty, std::string_view("\n\n")) == errc::ok);
  auto c = tandem::open_ngram_text_file(empty, {}, &info);
  REQUIRE(!c);
  CHECK(c.error() == errc::empty_input);
  CHECK(info.context().find(empty) != std::string_view::npos);
  CHECK(info.context().find("no non-empty line") != std::string_view::npos);

  auto d = tandem::open_ngram_text(corpus, {.order = 99}, &info);
  REQUIRE(!d);
  CHECK(d.error() == errc::invalid_argument);
  CHECK(info.context().find("99") != std::string_view::npos);

  const std::string good = (dir.path() / "corpus.txt").string();
  REQUIRE(tandem::detail::write_file(good, corpus) == errc::ok);
  auto e = tandem::open_ngram_text_file(good, {.order = 6}, &info);
  REQUIRE(e);
  auto from_text = tandem::open_ngram_text(corpus, {.order = 6});
  REQUIRE(from_text);
  auto x = tandem::complete(*e, {.prompt = "and dar"});
  auto y = tandem::complete(*from_text, {.prompt = "and dar"});
  REQUIRE(x);
  REQUIRE(y);
  CHECK(x->text == y->text);
}

TEST_CASE("text: experts and amateurs of different vocabularies are vocab_mismatch with both sizes",
          "[text][contrastive][errors]") {
  auto big = tandem::open_ngram_text(corpus);
  REQUIRE(big);
  const tandem::ngram_model small = tandem_test::vocab64_ngram();
  tandem::ngram_session amateur(small);
  tandem::error_info info;
  auto cm = tandem::make_contrastive(big->session(), amateur, {}, &info);
  REQUIRE(!cm);
  CHECK(cm.error() == errc::vocab_mismatch);
  CHECK(info.context().find("expert vocabulary 256, amateur vocabulary 64") == 0);
}
