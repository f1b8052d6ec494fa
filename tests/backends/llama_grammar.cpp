// Tests of llama_grammar_constraint (llama.cpp's GBNF grammar sampler as a tandem
// Constraint) over the tiny random-weight model with the built-in vocabulary: the mask equals
// a brute-force walk of the token pieces, forced tokens, ends, rewind by replay, bad
// grammars, and generate() and the speculative decoder constrained by a grammar.
#include "tandem/backends/llama_grammar.hpp"

#include <algorithm>
#include <cstddef>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/catch.hpp"
#include "common/scratch_dir.hpp"
#include "common/tiny_gguf.hpp"
#include "tandem/backends/llama_cpp.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative.hpp"

namespace {

using tandem::errc;
using tandem::llama_grammar_constraint;
using tandem::token_id;

const tandem::llama_model_handle& tiny_model() {
  static tandem_test::scratch_dir dir("tandem-llama-grammar-test-");
  static tandem::llama_model_handle model = [] {
    tandem::llama_quiet_logs(false);  // the tests give bad grammars on purpose
    tandem::tools::tiny_llama_config cfg;
    cfg.seed = 7;
    return tandem_test::load_tiny_gguf(dir.path(), "tiny.gguf", cfg);
  }();
  return model;
}

tandem::llama_session make_session() {
  auto s = tandem::llama_session::create(tiny_model(), {.context_size = 256, .threads = 1});
  REQUIRE(s.has_value());
  return std::move(*s);
}

llama_grammar_constraint make(std::string_view gbnf) {
  auto c = llama_grammar_constraint::create(tiny_model(), gbnf);
  REQUIRE(c.has_value());
  return std::move(*c);
}

// The rendered text of token t (byte tokens as their byte; control tokens empty).
std::string piece(token_id t) {
  char buf[64];
  const int n = llama_token_to_piece(tiny_model().vocab(), t, buf, sizeof buf, 0, false);
  REQUIRE(n >= 0);
  return std::string(buf, static_cast<std::size_t>(n));
}

// The token whose stored text is exactly `text` (e.g. "y" or "<0xC3>").
token_id find_token(std::string_view text) {
  const auto* v = tiny_model().vocab();
  for (int i = 0; i < llama_vocab_n_tokens(v); ++i)
    if (text == llama_vocab_get_text(v, i)) return static_cast<token_id>(i);
  FAIL("no token " << text);
  return -1;
}

// Brute force: the tokens whose piece is a non-empty prefix of one of `rest` (what may still
// be written), plus the end-of-generation tokens when "" is one of them.
std::set<token_id> expected_allowed(const std::vector<std::string>& rest) {
  std::set<token_id> out;
  const auto* v = tiny_model().vocab();
  const bool may_end = std::find(rest.begin(), rest.end(), "") != rest.end();
  for (int i = 0; i < llama_vocab_n_tokens(v); ++i) {
    const auto t = static_cast<token_id>(i);
    if (llama_vocab_is_eog(v, i)) {
      if (may_end) out.insert(t);
      continue;
    }
    const std::string p = piece(t);
    if (p.empty()) continue;
    for (const std::string& r : rest)
      if (r.starts_with(p)) out.insert(t);
  }
  return out;
}

std::set<token_id> allowed_by(const llama_grammar_constraint& c) {
  std::set<token_id> out;
  for (std::size_t i = 0; i < c.vocab_size(); ++i)
    if (c.allows(static_cast<token_id>(i))) out.insert(static_cast<token_id>(i));
  return out;
}

}  // namespace

TEST_CASE("llama_grammar: the mask equals a brute-force walk of the token pieces",
          "[backends][llama_cpp][constraint]") {
  auto c = make(R"(root ::= ("yes" | "no") "!")");
  CHECK(c.vocab_size() == tiny_model().vocab_size());
  const std::vector<std::string> words = {"yes!", "no!"};
  const std::string path = "yes!";
  for (std::size_t k = 0; k <= path.size(); ++k) {
    std::vector<std::string> rest;
    for (const std::string& w : words)
      if (w.starts_with(path.substr(0, k))) rest.push_back(w.substr(k));
    const auto want = expected_allowed(rest);
    REQUIRE_FALSE(want.empty());
    CHECK(allowed_by(c) == want);
    // mask() agrees with allows() and leaves allowed logits unchanged.
    std::vector<float> logits(c.vocab_size() + 3, 1.5f);
    REQUIRE(c.mask(logits) == errc::ok);
    for (std::size_t i = 0; i < logits.size(); ++i)
      CHECK((logits[i] == 1.5f) ==
            (i < c.vocab_size() && want.count(static_cast<token_id>(i)) > 0));
    CHECK(c.can_end() == (k == path.size()));
    CHECK(c.is_complete() == (k == path.size()));
    if (k < path.size()) REQUIRE(c.advance(find_token(path.substr(k, 1))) == errc::ok);
  }
  CHECK(c.position() == path.size());
  std::vector<float> short_logits(c.vocab_size() - 1, 0.0f);
  CHECK(c.mask(short_logits) == errc::size_mismatch);
}

TEST_CASE("llama_grammar: a token only byte tokens can start is forced",
          "[backends][llama_cpp][constraint]") {
  auto c = make(R"(root ::= "é" [!?])");  // é is C3 A9: no piece but the two byte tokens
  CHECK(c.forced() == find_token("<0xC3>"));
  REQUIRE(c.advance(find_token("<0xC3>")) == errc::ok);
  CHECK(c.forced() == find_token("<0xA9>"));
  REQUIRE(c.advance(find_token("<0xA9>")) == errc::ok);
  CHECK(c.forced() == tandem::no_token);  // "!" and "?", each as a piece and as a byte
  CHECK_FALSE(c.can_end());
  REQUIRE(c.advance(find_token("?")) == errc::ok);
  CHECK(c.is_complete());
  const auto eos = static_cast<token_id>(llama_vocab_eos(tiny_model().vocab()));
  CHECK(c.forced() == eos);  // only the end of generation is left
}

TEST_CASE("llama_grammar: advance refuses what the grammar does not allow and rewind replays",
          "[backends][llama_cpp][constraint]") {
  auto c = make(R"(root ::= [a-c]+ "." [a-c]+)");
  CHECK(c.advance(find_token("d")) == errc::constraint_violation);
  CHECK(c.advance(-1) == errc::invalid_token);
  CHECK(c.advance(static_cast<token_id>(c.vocab_size())) == errc::invalid_token);
  CHECK(c.position() == 0);
  const auto eos = static_cast<token_id>(llama_vocab_eos(tiny_model().vocab()));
  CHECK(c.advance(eos) == errc::constraint_violation);  // llama.cpp would abort on it

  const std::string text = "ab.ca";
  for (const char ch : text) REQUIRE(c.advance(find_token(std::string(1, ch))) == errc::ok);
  CHECK(c.can_end());
  CHECK(c.rewind(6) == errc::rewind_out_of_range);
  REQUIRE(c.rewind(3) == errc::ok);  // back to "ab"
  CHECK(c.position() == 2);
  auto fresh = make(R"(root ::= [a-c]+ "." [a-c]+)");
  REQUIRE(fresh.advance(find_token("a")) == errc::ok);
  REQUIRE(fresh.advance(find_token("b")) == errc::ok);
  CHECK(allowed_by(c) == allowed_by(fresh));
  CHECK(c.allows(find_token(".")));
  CHECK_FALSE(c.can_end());
  c.reset();
  CHECK(c.position() == 0);
  CHECK_FALSE(c.allows(find_token(".")));
}

TEST_CASE("llama_grammar: a bad grammar is a parse_error", "[backends][llama_cpp][constraint]") {
  for (const char* bad :
       {R"(root ::= "unterminated)", "root ::= undefined-rule", R"(other ::= "a")"}) {
    tandem::error_info info;
    auto c = llama_grammar_constraint::create(tiny_model(), bad, "root", &info);
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error() == errc::parse_error);
    CHECK(info.code == errc::parse_error);
  }
  CHECK(llama_grammar_constraint::create(static_cast<const llama_vocab*>(nullptr), "root ::= \"a\"")
            .error() == errc::invalid_argument);
}

TEST_CASE("llama_grammar: generate() over a llama.cpp session writes only the grammar's language",
          "[backends][llama_cpp][constraint]") {
  const tandem::llama_tokenizer tok(tiny_model());
  std::vector<token_id> prompt = {*tok.bos()};
  REQUIRE(tok.encode("In the beginning", prompt) == errc::ok);
  const token_id stops[] = {*tok.eos()};
  auto c = make(R"(root ::= ("yes" | "no" | "maybe") "!")");
  auto session = make_session();
  tandem::greedy_sampler greedy;
  tandem::generation_options o;
  o.max_tokens = 16;
  o.stop_tokens = stops;
  o.constraint = c;
  tandem::completion out;
  REQUIRE(tandem::generate(session, tok, greedy, prompt, o, out) == errc::ok);
  CHECK((out.text == "yes!" || out.text == "no!" || out.text == "maybe!"));
  CHECK(out.finish == tandem::finish_reason::constraint_complete);
  CHECK(c.position() == out.tokens.size());
}

TEST_CASE("llama_grammar: speculative decoding under a grammar equals constrained generate()",
          "[backends][llama_cpp][constraint][speculative]") {
  const tandem::llama_tokenizer tok(tiny_model());
  std::vector<token_id> prompt = {*tok.bos()};
  REQUIRE(tok.encode("And God said", prompt) == errc::ok);
  const char* gbnf = R"(root ::= [a-z ]+ "." | "é" [a-z]+ ".")";
  tandem::generation_options o;
  o.max_tokens = 24;

  auto want_c = make(gbnf);
  o.constraint = want_c;
  auto lone = make_session();
  tandem::greedy_sampler greedy;
  tandem::completion want;
  REQUIRE(tandem::generate(lone, greedy, prompt, o, want) == errc::ok);
  REQUIRE(want.tokens.size() > 1);

  auto got_c = make(gbnf);
  o.constraint = got_c;
  auto target = make_session();
  auto draft = make_session();  // the same model: every masked draft is accepted
  tandem::sampler_chain chain(0);
  REQUIRE(chain.add(tandem::sampling::greedy{}) == errc::ok);
  tandem::model_drafter drafter(draft, std::move(chain));
  tandem::speculative_decoder dec(target, drafter, tandem::fixed_draft{4});
  tandem::sampler_chain s(0);
  REQUIRE(s.add(tandem::sampling::greedy{}) == errc::ok);
  tandem::completion got;
  REQUIRE(dec.generate(s, prompt, o, got) == errc::ok);
  CHECK(got.tokens == want.tokens);
  CHECK(got.finish == want.finish);
  CHECK(got.forced_tokens == want.forced_tokens);
  CHECK(dec.stats().drafted > 0);
  CHECK(got_c.position() == got.tokens.size());
}
