// compile_regex: the language equals std::regex's (ECMAScript) on every short string over
// a small alphabet; matches are accepted token by token under random tokenizations and
// invalid prefixes rejected; the dialect's Unicode rules; each named error.
#include "tandem/constrain/regex.hpp"

#include <cstddef>
#include <random>
#include <regex>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/catch.hpp"
#include "constrain/helpers.hpp"

namespace {

struct language_case {
  const char* pattern;
  const char* alphabet;  // single bytes
  std::size_t max_len;
};

// Every string over `alphabet` of length <= max_len.
std::vector<std::string> all_strings(std::string_view alphabet, std::size_t max_len) {
  std::vector<std::string> out{""};
  std::size_t from = 0;
  for (std::size_t len = 1; len <= max_len; ++len) {
    const std::size_t to = out.size();
    for (std::size_t i = from; i < to; ++i)
      for (const char c : alphabet) out.push_back(out[i] + c);
    from = to;
  }
  return out;
}

// Whether the byte automaton accepts `s` as a whole (walking bytes).
bool dfa_accepts(const tandem::compiled_constraint& cc, std::string_view s) {
  const std::int32_t q = tandem_test::walk(*cc.data(), 0, s);
  return q >= 0 && cc.data()->accepting[static_cast<std::size_t>(q)] != 0;
}

const language_case language_cases[] = {
    {"a|b|ab", "abc", 5},
    {"(ab|c)*d", "abcd", 7},
    {"[a-c]{2,4}", "abcd", 6},
    {"\\d+(\\.\\d{1,2})?", "01.a", 7},
    {"-?(0|[1-9]\\d*)", "-012", 7},
    {"\"([^\"\\\\\\n]|\\\\.)*\"", "\"\\a\n", 7},
    {"(true|false|null)", "truefalsn", 5},
    {"[^abc]x?", "adx-", 5},
    {"x{3}|y{0,2}z", "xyz", 6},
    {"\\w+@\\w+\\.c", "a@.c_", 7},
    {"(?:ab)+?c", "abc", 8},
    {"\\s*\\S+", " \ta", 7},
    {"[\\d\\-]+[^\\d]", "1-a", 7},
    {"^ab$", "ab", 4},
    {"(a|)+b{0,}", "ab", 7},
    {"[\\W]{1,3}a*", "a.-", 6},
    {"(a(b(c)?)?)*", "abc", 8},
    {"\\x41\\u0042[\\x43-\\x45]\\.\\*", "ABCDE.*", 6},
    {"([a-b][^a-b]){2}|\\D\\D", "ab1x", 6},
};

// Calls f(case, compiled, std::regex) for every language case.
template <class F>
void for_each_case(const tandem::token_vocabulary& vocab, F&& f) {
  for (const language_case& lc : language_cases) {
    INFO("pattern " << lc.pattern);
    const tandem::compiled_constraint cc = tandem_test::must_compile(lc.pattern, vocab);
    const std::regex re(lc.pattern, std::regex::ECMAScript);
    f(lc, cc, re);
  }
}

}  // namespace

TEST_CASE("regex: the automaton's language equals std::regex on every short string",
          "[constrain][regex]") {
  const tandem::token_vocabulary vocab = tandem_test::synthetic_vocabulary();
  for_each_case(vocab, [&](const language_case& lc, const tandem::compiled_constraint& cc,
                           const std::regex& re) {
    std::size_t matches = 0;
    for (const std::string& s : all_strings(lc.alphabet, lc.max_len)) {
      INFO("text '" << s << "'");
      const bool want = std::regex_match(s, re);
      REQUIRE(dfa_accepts(cc, s) == want);
      matches += want ? 1 : 0;
    }
    CHECK(matches > 0);  // the case exercises some matches
  });
}

TEST_CASE("regex: every match is accepted token by token under random tokenizations",
          "[constrain][regex]") {
  const tandem::token_vocabulary vocab = tandem_test::synthetic_vocabulary();
  std::mt19937 rng(20261205);
  for_each_case(vocab, [&](const language_case& lc, const tandem::compiled_constraint& cc,
                           const std::regex& re) {
    tandem::constraint_state st(cc);
    for (const std::string& s : all_strings(lc.alphabet, lc.max_len)) {
      if (!std::regex_match(s, re)) continue;
      for (int trial = 0; trial < 2; ++trial) {
        const std::vector<tandem::token_id> toks = tandem_test::random_tokens(vocab, s, rng);
        REQUIRE(toks.size() <= s.size());
        st.reset();
        for (const tandem::token_id t : toks) {
          INFO("text '" << s << "' token " << t);
          REQUIRE(st.allows(t));
          REQUIRE(st.advance(t) == tandem::errc::ok);
        }
        INFO("text '" << s << "'");
        REQUIRE(st.can_end());
        REQUIRE(st.allows(tandem_test::synthetic_eos));
        REQUIRE(st.advance(tandem_test::synthetic_eos) == tandem::errc::ok);
        REQUIRE(st.is_complete());
        REQUIRE(st.position() == toks.size() + 1);
      }
    }
  });
}

TEST_CASE("regex: an invalid prefix is rejected and leaves the state unchanged",
          "[constrain][regex]") {
  const tandem::token_vocabulary vocab = tandem_test::synthetic_vocabulary();
  for_each_case(vocab, [&](const language_case& lc, const tandem::compiled_constraint& cc,
                           const std::regex& re) {
    const std::vector<std::string> strings = all_strings(lc.alphabet, lc.max_len);
    std::unordered_set<std::string> match_prefixes;  // every prefix of every match
    for (const std::string& s : strings)
      if (std::regex_match(s, re))
        for (std::size_t n = 0; n <= s.size(); ++n) match_prefixes.insert(s.substr(0, n));
    tandem::constraint_state st(cc);
    std::size_t rejected = 0;
    for (const std::string& s : strings) {
      // Feed s byte by byte (byte tokens are ids 0..255); stop at the first rejection.
      st.reset();
      std::size_t fed = 0;
      for (; fed < s.size(); ++fed) {
        const auto t = static_cast<tandem::token_id>(static_cast<unsigned char>(s[fed]));
        const std::size_t state = st.automaton_state(), pos = st.position();
        if (st.advance(t) != tandem::errc::ok) {
          REQUIRE(st.advance(t) == tandem::errc::constraint_violation);
          REQUIRE(st.automaton_state() == state);
          REQUIRE(st.position() == pos);
          REQUIRE_FALSE(st.allows(t));
          break;
        }
      }
      if (fed == s.size()) {
        REQUIRE(st.can_end() == std::regex_match(s, re));
        continue;
      }
      // s[0..fed] was rejected: no match starts with it.
      ++rejected;
      const std::string bad = s.substr(0, fed + 1);
      INFO("rejected prefix '" << bad << "'");
      REQUIRE(match_prefixes.count(bad) == 0);
    }
    CHECK(rejected > 0);
  });
}

TEST_CASE("regex: '.' and negated classes match whole UTF-8 code points", "[constrain][regex]") {
  const tandem::token_vocabulary vocab = tandem_test::synthetic_vocabulary();
  const auto accepts = [&](const char* pattern, std::string_view text) {
    const tandem::compiled_constraint cc = tandem_test::must_compile(pattern, vocab);
    return dfa_accepts(cc, text);
  };
  CHECK(accepts(".", "\xC3\xA9"));
  CHECK(accepts(".", "\xF0\x9F\x98\x80"));
  CHECK_FALSE(accepts(".", "\xC3"));              // half a character
  CHECK_FALSE(accepts(".", "\xC3\xA9\xC3\xA9"));  // two characters
  CHECK_FALSE(accepts(".", "\n"));
  CHECK_FALSE(accepts(".", "\xED\xA0\x80"));  // a surrogate is not UTF-8
  CHECK(accepts("[^a]", "\xE6\x97\xA5"));
  CHECK_FALSE(accepts("[^a]", "a"));
  CHECK_FALSE(accepts("[^a]", "\xA5"));  // a lone continuation byte
  CHECK(accepts("[\xC3\xA9-\xC3\xAB]", "\xC3\xAA"));
  CHECK_FALSE(accepts("[\xC3\xA9-\xC3\xAB]", "\xC3\xAC"));
  CHECK(accepts("\\u65e5\\u672c", "\xE6\x97\xA5\xE6\x9C\xAC"));
  CHECK(accepts("\\uD83D\\uDE00", "\xF0\x9F\x98\x80"));
  CHECK(accepts("\\xe9", "\xC3\xA9"));  // \xHH is the code point U+00HH
  CHECK(accepts("[\\u0100-\\uFFFF]", "\xEF\xBF\xBF"));
  CHECK(accepts("[\\u0100-\\uFFFF]", "\xC4\x80"));
  CHECK_FALSE(accepts("[\\u0100-\\uFFFF]", "\xC3\xBF"));
  CHECK_FALSE(accepts("[\\u0100-\\uFFFF]", "\xF0\x90\x80\x80"));
  // Multi-byte tokens and partial-character tokens spell a character together.
  const tandem::compiled_constraint cc = tandem_test::must_compile("\\u65e5+", vocab);
  tandem::constraint_state st(cc);
  const auto id_of = [&](std::string_view b) {
    for (std::size_t t = 0; t < vocab.size(); ++t)
      if (vocab.bytes(static_cast<tandem::token_id>(t)) == b)
        return static_cast<tandem::token_id>(t);
    return tandem::no_token;
  };
  REQUIRE(st.advance(id_of("\xE6\x97")) == tandem::errc::ok);
  CHECK_FALSE(st.can_end());
  REQUIRE(st.advance(id_of("\xA5")) == tandem::errc::ok);
  CHECK(st.can_end());
  CHECK(st.allows(id_of("\xE6\x97\xA5")));
  CHECK_FALSE(st.allows(id_of("\xE6\x97\xA5\xE6\x9C\xAC")));
}

TEST_CASE("regex: each named error carries the column of the pattern", "[constrain][regex]") {
  const tandem::token_vocabulary vocab = tandem_test::synthetic_vocabulary();
  struct error_case {
    const char* pattern;
    tandem::errc code;
    std::uint64_t column;
  };
  const error_case cases[] = {
      {"ab(c", tandem::errc::parse_error, 3},
      {"abc)", tandem::errc::parse_error, 4},
      {"a**", tandem::errc::parse_error, 3},
      {"*a", tandem::errc::parse_error, 1},
      {"a{2,1}", tandem::errc::parse_error, 2},
      {"a{x}", tandem::errc::parse_error, 2},
      {"a{2", tandem::errc::parse_error, 2},
      {"[abc", tandem::errc::parse_error, 1},
      {"[]", tandem::errc::parse_error, 1},
      {"[z-a]", tandem::errc::parse_error, 2},
      {"[\\d-z]", tandem::errc::parse_error, 2},
      {"ab\\", tandem::errc::parse_error, 3},
      {"\\q", tandem::errc::parse_error, 1},
      {"\\x4", tandem::errc::parse_error, 1},
      {"\\uD800", tandem::errc::parse_error, 1},
      {"a\xC3", tandem::errc::parse_error, 2},
      {"(a)\\1", tandem::errc::unsupported, 4},
      {"a(?=b)", tandem::errc::unsupported, 2},
      {"(?<=a)b", tandem::errc::unsupported, 1},
      {"(?<name>a)", tandem::errc::unsupported, 1},
      {"(?i)a", tandem::errc::unsupported, 1},
      {"a\\bc", tandem::errc::unsupported, 2},
      {"a*+", tandem::errc::unsupported, 3},
      {"a^b", tandem::errc::unsupported, 2},
      {"a$b", tandem::errc::unsupported, 2},
      {"\\p{L}", tandem::errc::unsupported, 1},
      {"[[:alpha:]]", tandem::errc::unsupported, 2},
      {"a{1001}", tandem::errc::constraint_too_large, 2},
      {"a{2,5000}", tandem::errc::constraint_too_large, 2},
  };
  for (const error_case& e : cases) {
    INFO("pattern " << e.pattern);
    tandem::error_info info;
    const auto r = tandem::compile_regex(e.pattern, vocab, {}, &info);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == e.code);
    CHECK(info.code == e.code);
    CHECK(info.line == 1);
    CHECK(info.column == e.column);
    CHECK_FALSE(info.context().empty());
  }
}

TEST_CASE("regex: automata over the limits and empty languages are named errors",
          "[constrain][regex]") {
  const tandem::token_vocabulary vocab = tandem_test::synthetic_vocabulary();
  tandem::error_info info;
  tandem::constraint_options small;
  small.max_states = 4;
  auto r = tandem::compile_regex("abcdef", vocab, small, &info);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == tandem::errc::constraint_too_large);
  CHECK(tandem::compile_regex("abc", vocab, small).has_value());
  // Nested repetitions multiply: over the NFA limit, not a hang.
  r = tandem::compile_regex("((a{1000}){1000}){1000}", vocab, {}, &info);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == tandem::errc::constraint_too_large);
  // Many distinct states: [ab]*a[ab]{n} needs 2^(n+1) states.
  tandem::constraint_options thousand;
  thousand.max_states = 1000;
  r = tandem::compile_regex("[ab]*a[ab]{10}", vocab, thousand, &info);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == tandem::errc::constraint_too_large);
  CHECK(tandem::compile_regex("[ab]*a[ab]{8}", vocab, thousand).has_value());
  // Groups nested deeper than the stack may take: a named error, not a crash; 256 is fine.
  const auto nested = [](std::size_t depth) {
    return std::string(depth, '(') + "a" + std::string(depth, ')');
  };
  CHECK(tandem::compile_regex(nested(256), vocab).has_value());
  r = tandem::compile_regex(nested(20000), vocab, {}, &info);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == tandem::errc::constraint_too_large);
  CHECK(info.column == 257);
  // Nothing matches: an empty class.
  r = tandem::compile_regex("a[^\\s\\S]", vocab, {}, &info);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == tandem::errc::invalid_argument);
  // Nothing this vocabulary can spell.
  auto letters = tandem::token_vocabulary::from_bytes({"a", "b", ""}, {2});
  REQUIRE(letters.has_value());
  r = tandem::compile_regex("a+c", *letters, {}, &info);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == tandem::errc::invalid_argument);
}
