// constraint_state over compiled constraints: the mask equals brute force on random states,
// rewind/advance round trips, forced(), can_end/is_complete, no allocation once warm;
// compile_choice; token_vocabulary.
#include <tandem/backends/ngram_text.hpp>
#include <tandem/constrain.hpp>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "constrain/helpers.hpp"

using tandem_test::check_random_states;

TEST_CASE("constraint_state: the mask equals brute force on random states", "[constrain][state]") {
  const tandem::token_vocabulary vocab = tandem_test::synthetic_vocabulary();
  for (const char* pattern : {"(true|false|null)", "\\{\"a\": ?(-?\\d{1,5}|\"[^\"\\\\]{0,8}\")\\}",
                              "[a-c]+@[a-c]{2,}\\.com", "(\\u65e5\\u672c|\\u00e9|.)*x", "[^\"]*\"",
                              "(hello|yes|no)( (hello|yes|no)){0,3}"}) {
    INFO("pattern " << pattern);
    check_random_states(tandem_test::must_compile(pattern, vocab), vocab, 7, 20, 30);
  }
  const std::vector<std::string> choices{"hello", "help", "yes", "no", "\xC3\xA9t\xC3\xA9", ""};
  auto cc = tandem::compile_choice(choices, vocab);
  REQUIRE(cc.has_value());
  check_random_states(*cc, vocab, 11, 20, 10);
}

TEST_CASE("constraint_state: a vocabulary over 64 tokens per word stores bit sets and lists",
          "[constrain][state]") {
  // 2,000 tokens: every 1- and 2-letter string over a..z, then digits; a permissive state
  // (a bit set) and a narrow one (a list) both match brute force.
  std::vector<std::string> strings;
  for (char a = 'a'; a <= 'z'; ++a) {
    strings.emplace_back(1, a);
    for (char b = 'a'; b <= 'z'; ++b) strings.push_back(std::string{a, b});
  }
  for (int i = 0; static_cast<int>(strings.size()) < 1999; ++i)
    strings.push_back(std::to_string(i));
  strings.emplace_back();  // end token
  auto vocab = tandem::token_vocabulary::from_bytes(strings, {1999});
  REQUIRE(vocab.has_value());
  const auto cc = tandem_test::must_compile("[a-z]*(7|q)", *vocab);
  check_random_states(cc, *vocab, 3, 10, 12);
  CHECK(cc.data()->bits.size() > 0);
  CHECK(cc.data()->lists.size() > 0);
}

TEST_CASE("constraint_state: rewind returns to the states and masks advanced through",
          "[constrain][state]") {
  const tandem::token_vocabulary vocab = tandem_test::synthetic_vocabulary();
  const auto cc = tandem_test::must_compile("(ab|c)*d(xyz)?", vocab);
  tandem::constraint_state st(cc);
  const std::string text = "abcabccdxyz";
  std::mt19937 rng(5);
  const auto toks = tandem_test::random_tokens(vocab, text, rng);
  REQUIRE_FALSE(toks.empty());
  std::vector<std::size_t> states{st.automaton_state()};
  for (const tandem::token_id t : toks) {
    REQUIRE(st.advance(t) == tandem::errc::ok);
    states.push_back(st.automaton_state());
  }
  CHECK(st.can_end());
  for (std::size_t back = toks.size(); back-- > 0;) {
    REQUIRE(st.rewind(1) == tandem::errc::ok);
    REQUIRE(st.position() == back);
    REQUIRE(st.automaton_state() == states[back]);
    REQUIRE(st.allows(toks[back]));
  }
  CHECK(st.rewind(1) == tandem::errc::rewind_out_of_range);
  CHECK(st.position() == 0);
  // Forward again, then a rewind of several tokens at once.
  for (const tandem::token_id t : toks) REQUIRE(st.advance(t) == tandem::errc::ok);
  CHECK(st.rewind(toks.size() + 1) == tandem::errc::rewind_out_of_range);
  CHECK(st.position() == toks.size());
  REQUIRE(st.rewind(3) == tandem::errc::ok);
  CHECK(st.automaton_state() == states[toks.size() - 3]);
  REQUIRE(st.rewind(0) == tandem::errc::ok);
  CHECK(st.position() == toks.size() - 3);
  st.reset();
  CHECK(st.position() == 0);
  CHECK(st.automaton_state() == states[0]);
}

TEST_CASE("constraint_state: forced() names the one allowed token, end tokens included",
          "[constrain][state]") {
  // Byte tokens only, plus an end token: every step of a single choice is forced.
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.emplace_back(1, static_cast<char>(b));
  bytes.emplace_back();
  auto vocab = tandem::token_vocabulary::from_bytes(bytes, {256});
  REQUIRE(vocab.has_value());
  const std::vector<std::string> one{"yes"};
  auto cc = tandem::compile_choice(one, *vocab);
  REQUIRE(cc.has_value());
  tandem::constraint_state st(*cc);
  for (const char c : std::string("yes")) {
    CHECK_FALSE(st.can_end());
    CHECK_FALSE(st.is_complete());
    REQUIRE(st.forced() == static_cast<tandem::token_id>(c));
    REQUIRE(st.advance(st.forced()) == tandem::errc::ok);
  }
  CHECK(st.can_end());
  CHECK(st.is_complete());
  CHECK(st.forced() == 256);
  REQUIRE(st.advance(256) == tandem::errc::ok);
  CHECK(st.is_complete());
  CHECK(st.can_end());
  CHECK(st.forced() == tandem::no_token);
  CHECK(st.advance('y') == tandem::errc::constraint_violation);
  // A choice between "yes" and "yet": 'y', 'e' forced, then two options.
  const std::vector<std::string> two{"yes", "yet"};
  cc = tandem::compile_choice(two, *vocab);
  REQUIRE(cc.has_value());
  tandem::constraint_state s2(*cc);
  REQUIRE(s2.advance('y') == tandem::errc::ok);
  REQUIRE(s2.advance('e') == tandem::errc::ok);
  CHECK(s2.forced() == tandem::no_token);
  CHECK(s2.allows('s'));
  CHECK(s2.allows('t'));
  CHECK_FALSE(s2.allows(256));
}

TEST_CASE("constraint_state: can_end and is_complete follow the automaton", "[constrain][state]") {
  const tandem::token_vocabulary vocab = tandem_test::synthetic_vocabulary();
  const auto cc = tandem_test::must_compile("ab(c)?", vocab);
  tandem::constraint_state st(cc);
  CHECK_FALSE(st.can_end());
  CHECK_FALSE(st.allows(tandem_test::synthetic_eos));
  CHECK(st.advance(tandem_test::synthetic_eos) == tandem::errc::constraint_violation);
  CHECK_FALSE(st.allows(tandem_test::synthetic_bos));  // a token without bytes
  REQUIRE(st.advance('a') == tandem::errc::ok);
  REQUIRE(st.advance('b') == tandem::errc::ok);
  CHECK(st.can_end());  // "ab" matches, "abc" too
  CHECK_FALSE(st.is_complete());
  CHECK(st.allows(tandem_test::synthetic_eos));
  REQUIRE(st.advance('c') == tandem::errc::ok);
  CHECK(st.can_end());
  CHECK(st.is_complete());  // nothing may follow "abc"
  CHECK(st.forced() == tandem_test::synthetic_eos);
  // Ids outside the vocabulary.
  CHECK_FALSE(st.allows(-1));
  CHECK_FALSE(st.allows(static_cast<tandem::token_id>(vocab.size())));
  CHECK(st.advance(-1) == tandem::errc::invalid_token);
  CHECK(st.advance(static_cast<tandem::token_id>(vocab.size())) == tandem::errc::invalid_token);
  std::vector<float> short_logits(vocab.size() - 1, 1.0f);
  CHECK(st.mask(short_logits) == tandem::errc::size_mismatch);
  CHECK(short_logits[0] == 1.0f);
}

TEST_CASE("constraint_state: mask, advance and rewind allocate nothing once warm",
          "[constrain][state]") {
  const tandem::token_vocabulary vocab = tandem_test::synthetic_vocabulary();
  const auto cc = tandem_test::must_compile("(ab|c)*d", vocab);
  tandem::constraint_state st(cc, 64);
  std::vector<float> logits(vocab.size() + 7, 0.5f);
  tandem::constraint_ref ref(st);
  tandem_test::allocation_scope scope;
  for (int round = 0; round < 10; ++round) {
    for (const char c : std::string("abcabcc")) {
      REQUIRE(ref.mask(logits) == tandem::errc::ok);
      REQUIRE(ref.advance(static_cast<tandem::token_id>(c)) == tandem::errc::ok);
    }
    REQUIRE(ref.rewind(7) == tandem::errc::ok);
  }
  CHECK(scope.allocations() == 0);
}

TEST_CASE("constraint_state: copies of a compiled constraint share its tables",
          "[constrain][state]") {
  const tandem::token_vocabulary vocab = tandem_test::synthetic_vocabulary();
  std::optional<tandem::constraint_state> st;
  {
    const auto cc = tandem_test::must_compile("yes|no", vocab);
    const tandem::compiled_constraint copy =
        cc;  // NOLINT(performance-unnecessary-copy-initialization)
    CHECK(copy.data() == cc.data());
    CHECK(copy.vocab_size() == vocab.size());
    CHECK(copy.state_count() >= 3);
    CHECK(copy.memory_bytes() > 0);
    st.emplace(copy);
  }
  // The state keeps the tables alive after every compiled_constraint is gone.
  REQUIRE(st->advance('n') == tandem::errc::ok);
  REQUIRE(st->advance('o') == tandem::errc::ok);
  CHECK(st->can_end());
}

TEST_CASE("choice: errors are named", "[constrain][choice]") {
  const tandem::token_vocabulary vocab = tandem_test::synthetic_vocabulary();
  tandem::error_info info;
  auto r = tandem::compile_choice({}, vocab, {}, &info);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == tandem::errc::empty_input);
  CHECK(info.code == tandem::errc::empty_input);
  tandem::constraint_options small;
  small.max_states = 3;
  const std::vector<std::string> long_words{"abcdefgh", "xyzxyzxyz"};
  r = tandem::compile_choice(long_words, vocab, small, &info);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == tandem::errc::constraint_too_large);
  auto letters = tandem::token_vocabulary::from_bytes({"a", "b"}, {});
  REQUIRE(letters.has_value());
  const std::vector<std::string> cz{"c", "zz"};
  r = tandem::compile_choice(cz, *letters, {}, &info);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == tandem::errc::invalid_argument);
  // A choice the vocabulary can spell only in part keeps the spellable options.
  const std::vector<std::string> mixed{"ab", "c"};
  r = tandem::compile_choice(mixed, *letters, {}, &info);
  REQUIRE(r.has_value());
  tandem::constraint_state st(*r);
  CHECK(st.forced() == 0);
}

TEST_CASE("vocabulary: tokens keep their bytes and its errors are named",
          "[constrain][vocabulary]") {
  auto v = tandem::token_vocabulary::from_bytes({"a", "", "bc", "a"}, {1, 1});
  REQUIRE(v.has_value());
  CHECK(v->size() == 4);
  CHECK(v->bytes(2) == "bc");
  CHECK(v->bytes(1).empty());
  CHECK(v->bytes(9).empty());
  CHECK(v->is_end(1));
  CHECK_FALSE(v->is_end(0));
  REQUIRE(v->end_tokens().size() == 1);
  CHECK(v->end_tokens()[0] == 1);
  tandem::error_info info;
  auto bad = tandem::token_vocabulary::from_bytes({}, {}, &info);
  CHECK(bad.error() == tandem::errc::empty_input);
  bad = tandem::token_vocabulary::from_bytes({"a"}, {1}, &info);
  CHECK(bad.error() == tandem::errc::invalid_token);
  CHECK(info.code == tandem::errc::invalid_token);
  // From a ByteTokenizer: the n-gram model's byte tokenizer.
  static_assert(tandem::ByteTokenizer<tandem::byte_tokenizer>);
  const tandem::token_id none[] = {10};
  auto bt = tandem::token_vocabulary::from_tokenizer(tandem::byte_tokenizer{}, none, &info);
  REQUIRE(bt.has_value());
  CHECK(bt->size() == 256);
  CHECK(bt->bytes('q') == "q");
  CHECK(bt->is_end(10));
  std::string out;
  CHECK(tandem::byte_tokenizer{}.token_bytes(256, out) == tandem::errc::invalid_token);
}
