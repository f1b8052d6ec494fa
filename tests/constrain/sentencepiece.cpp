// Constraints over the sentencepiece fixture tokenizer (kjv_bpe4000: BPE, byte fallback):
// the mask equals brute force on random states, and real tokenizations of matching text
// are accepted.
#include <tandem/backends/sentencepiece.hpp>
#include <tandem/constrain.hpp>

#include <random>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "constrain/helpers.hpp"

namespace {

struct fixture {
  tandem::sentencepiece_tokenizer tok;
  tandem::token_vocabulary vocab;
};

fixture& bpe() {
  static fixture f = [] {
    auto t = tandem::sentencepiece_tokenizer::load(TANDEM_FIXTURE_SPM_BPE4000);
    REQUIRE(t.has_value());
    const tandem::token_id eos[] = {t->eos_id()};
    auto v = tandem::token_vocabulary::from_tokenizer(*t, eos);
    REQUIRE(v.has_value());
    return fixture{std::move(t).value(), std::move(v).value()};
  }();
  return f;
}

}  // namespace

TEST_CASE("constrain over sentencepiece: token bytes follow the pieces", "[constrain][spm]") {
  static_assert(tandem::ByteTokenizer<tandem::sentencepiece_tokenizer>);
  fixture& f = bpe();
  CHECK(f.vocab.size() == 4000);
  std::size_t bytes_tokens = 0, empty = 0;
  for (std::size_t i = 0; i < f.vocab.size(); ++i) {
    const auto id = static_cast<tandem::token_id>(i);
    std::string piece;
    REQUIRE(f.tok.piece(id, piece) == tandem::errc::ok);
    if (f.tok.is_control(id) || f.tok.is_unknown(id)) {
      CHECK(f.vocab.bytes(id).empty());
      ++empty;
    } else {
      CHECK(f.vocab.bytes(id) == piece);
    }
    if (f.tok.is_byte(id)) ++bytes_tokens;
  }
  CHECK(bytes_tokens == 256);
  CHECK(empty >= 2);
  CHECK(f.vocab.is_end(f.tok.eos_id()));
}

TEST_CASE("constrain over sentencepiece: the mask equals brute force on random states",
          "[constrain][spm]") {
  fixture& f = bpe();
  for (const char* pattern :
       {" ?[A-Z][a-z]+( [a-z]+){0,4}[.;:]", " ?(the|and|of|LORD)( (the|and|of|LORD)){0,5}",
        "[^\\n]{0,12}\\u00e9"}) {
    INFO("pattern " << pattern);
    tandem_test::check_random_states(tandem_test::must_compile(pattern, f.vocab), f.vocab, 17, 6,
                                     12);
  }
}

TEST_CASE("constrain over sentencepiece: the tokenizer's own tokens of a match are accepted",
          "[constrain][spm]") {
  fixture& f = bpe();
  const auto cc = tandem_test::must_compile(" ?[A-Z][a-z\\u00e9]+( [A-Za-z]+)*[.;:,]", f.vocab);
  tandem::constraint_state st(cc);
  for (const char* text : {"In the beginning God created the heaven and the earth.",
                           "And the earth was without form, and void;", "Caf\xC3\xA9 and tea:"}) {
    INFO(text);
    std::string s(text);
    // Keep only the first clause (up to the first punctuation mark).
    s = s.substr(0, s.find_first_of(".;:,") + 1);
    std::vector<tandem::token_id> ids;
    REQUIRE(f.tok.encode(s, ids) == tandem::errc::ok);
    st.reset();
    std::string seen;
    for (const tandem::token_id t : ids) {
      REQUIRE(st.advance(t) == tandem::errc::ok);
      seen += f.vocab.bytes(t);
    }
    CHECK(st.can_end());
    CHECK(st.allows(f.tok.eos_id()));
    CHECK(seen.ends_with(s));
  }
}
