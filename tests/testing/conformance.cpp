// The conformance suite itself: a correct mock model and tokenizer pass it, and each kind
// of broken backend (logits that depend on batching, an append that changes the context
// and then fails, a rewind that leaves a trace, wrong score rows, NaN logits, a tokenizer
// that does not round trip, ...) fails the check named for that contract.
#include "tandem/testing/conformance.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/catch.hpp"
#include "common/mock_model.hpp"
#include "tandem/testing/catch2.hpp"
#include "testing/report_helpers.hpp"

namespace {

using tandem::conformance_report;
using tandem::conformance_status;
using tandem::errc;
using tandem::token_id;
using tandem_test::mock_model;
using tandem_test::mock_options;

using tandem_test::status_of;
using tandem_test::text_of;

// The contract breakages the suite must catch, one at a time.
enum class fault {
  none,
  batch_dependent,         // logits after a multi-token append differ from step-by-step
  partial_append,          // append keeps the valid tokens before a bad one, then fails
  rewind_trace,            // the logits remember tokens that rewind dropped
  rewind_clamps,           // rewind(n > size()) empties the context and succeeds
  score_rows_shifted,      // score writes the logits before each token, not after it
  score_ignores_row_size,  // score with rows of the wrong size appends and succeeds
  overflow_truncates,      // an append past the context keeps what fits, then fails
};

// A mock model (a deterministic table) with one fault wired in.
class faulty_model {
 public:
  faulty_model(fault f, mock_options o) : f_(f), inner_(std::move(o)) {
    logits_.assign(inner_.vocab_size(), 0.0f);
  }

  std::size_t vocab_size() const noexcept { return inner_.vocab_size(); }
  std::size_t size() const noexcept { return inner_.size(); }
  std::size_t context_length() const noexcept { return inner_.context_length(); }
  std::span<const float> logits() const noexcept { return logits_; }

  errc append(std::span<const token_id> t) {
    if (f_ == fault::partial_append) {
      for (std::size_t i = 0; i < t.size(); ++i) {
        if (errc e = inner_.append(t.subspan(i, 1)); e != errc::ok) return e;
        refresh(1);
      }
      return errc::ok;
    }
    if (f_ == fault::overflow_truncates && t.size() > context_length() - size()) {
      const std::size_t fits = context_length() - size();
      if (fits > 0 && inner_.append(t.first(fits)) == errc::ok) refresh(fits);
      return errc::context_overflow;
    }
    if (errc e = inner_.append(t); e != errc::ok) return e;
    refresh(t.size());
    return errc::ok;
  }

  errc score(std::span<const token_id> t, std::span<float> rows) {
    const std::size_t v = vocab_size();
    if (f_ == fault::score_ignores_row_size && rows.size() != t.size() * v) return append(t);
    const std::vector<float> before = logits_;
    if (errc e = inner_.score(t, rows); e != errc::ok) return e;
    if (f_ == fault::score_rows_shifted) {
      std::copy_backward(rows.begin(), rows.end() - static_cast<long>(v), rows.end());
      std::copy(before.begin(), before.end(), rows.begin());
    }
    refresh(1);
    return errc::ok;
  }

  errc rewind(std::size_t n) {
    if (f_ == fault::rewind_clamps) n = std::min(n, size());
    if (errc e = inner_.rewind(n); e != errc::ok) return e;
    dropped_ += n;
    refresh(1);
    return errc::ok;
  }

 private:
  void refresh(std::size_t batch) {
    const auto l = inner_.logits();
    logits_.assign(l.begin(), l.end());
    if (f_ == fault::batch_dependent && batch > 1) logits_[0] += 0.5f;
    if (f_ == fault::rewind_trace) logits_[1] += 0.5f * static_cast<float>(dropped_);
  }

  fault f_;
  mock_model inner_;
  std::vector<float> logits_;
  std::size_t dropped_ = 0;
};

// Only the four required members: no rewind, no score, no context length.
class bare_model {
 public:
  std::size_t vocab_size() const noexcept { return inner_.vocab_size(); }
  std::size_t size() const noexcept { return inner_.size(); }
  std::span<const float> logits() const noexcept { return inner_.logits(); }
  errc append(std::span<const token_id> t) { return inner_.append(t); }

 private:
  mock_model inner_;
};
static_assert(tandem::LanguageModel<bare_model> && !tandem::Rewindable<bare_model> &&
              !tandem::Scoring<bare_model> && !tandem::HasContextLength<bare_model>);

// The mock tokenizer with one fault.
enum class tok_fault { none, decode_drops_dots, encode_clears, piece_of_bad_id_succeeds };

class faulty_tokenizer {
 public:
  explicit faulty_tokenizer(tok_fault f) : f_(f) {}
  std::size_t vocab_size() const noexcept { return inner_.vocab_size(); }
  errc encode(std::string_view text, std::vector<token_id>& ids) const {
    if (f_ == tok_fault::encode_clears) ids.clear();
    return inner_.encode(text, ids);
  }
  errc decode(std::span<const token_id> t, std::string& out) const {
    if (f_ != tok_fault::decode_drops_dots) return inner_.decode(t, out);
    std::string mine;
    if (errc e = inner_.decode(t, mine); e != errc::ok) return e;
    std::erase(mine, '.');
    out += mine;
    return errc::ok;
  }
  errc piece(token_id id, std::string& out) const {
    if (f_ == tok_fault::piece_of_bad_id_succeeds && (id < 0 || id >= 16)) {
      out += "?";
      return errc::ok;
    }
    return inner_.piece(id, out);
  }

 private:
  tok_fault f_;
  tandem_test::mock_tokenizer inner_;
};

constexpr std::string_view mock_texts[] = {"hello a b.", "STOP\n", "\xC3\xA9\xF0\x9F\x98\x80 ab"};

}  // namespace

TEST_CASE("conformance: a correct table model passes every check, exactly",
          "[testing][conformance]") {
  mock_options o;
  o.context_length = 40;
  const auto exact =
      tandem::conformance_options{.tolerance = tandem::conformance_tolerance::exact()};
  const conformance_report r = tandem::check_language_model([&] { return mock_model(o); }, exact);
  INFO(text_of(r));
  CHECK(r.passed());
  CHECK(r.count(conformance_status::failed) == 0);
  CHECK(r.count(conformance_status::not_applicable) == 0);
  for (const char* name :
       {"sizes", "logits_finite", "append_equals_stepwise", "score_equals_stepwise",
        "rewind_then_append_equals_fresh", "rewind_out_of_range_changes_nothing",
        "invalid_token_changes_nothing", "score_size_mismatch_changes_nothing",
        "context_overflow_changes_nothing"})
    CHECK(status_of(r, name) == conformance_status::passed);
  TANDEM_CHECK_CONFORMANCE(r);
}

TEST_CASE("conformance: each broken backend fails the check named for its fault",
          "[testing][conformance]") {
  struct expectation {
    fault f;
    const char* check;
  };
  const expectation cases[] = {
      {fault::batch_dependent, "append_equals_stepwise"},
      {fault::partial_append, "invalid_token_changes_nothing"},
      {fault::rewind_trace, "rewind_then_append_equals_fresh"},
      {fault::rewind_clamps, "rewind_out_of_range_changes_nothing"},
      {fault::score_rows_shifted, "score_equals_stepwise"},
      {fault::score_ignores_row_size, "score_size_mismatch_changes_nothing"},
      {fault::overflow_truncates, "context_overflow_changes_nothing"},
  };
  mock_options o;
  o.context_length = 40;
  // The faultless wrapper passes: the failures below come from the faults alone.
  const conformance_report good =
      tandem::check_language_model([&] { return faulty_model(fault::none, o); });
  INFO(text_of(good));
  REQUIRE(good.passed());
  for (const auto& c : cases) {
    const conformance_report r = tandem::check_language_model([&] { return faulty_model(c.f, o); });
    INFO(c.check << "\n" << text_of(r));
    CHECK(status_of(r, c.check) == conformance_status::failed);
    CHECK_FALSE(r.find(c.check)->message().empty());
    CHECK_FALSE(r.passed());
  }
}

TEST_CASE("conformance: NaN logits fail logits_finite and name the position",
          "[testing][conformance]") {
  mock_options o;
  o.non_finite_at = 5;  // every logit is NaN after the fifth token
  const conformance_report r = tandem::check_language_model([&] { return mock_model(o); });
  INFO(text_of(r));
  CHECK(status_of(r, "logits_finite") == conformance_status::failed);
  CHECK(r.find("logits_finite")->message().find("after token 4") != std::string_view::npos);
  CHECK(r.find("logits_finite")->message().find("nan") != std::string_view::npos);
  // NaN is reported once, under its own name: the comparisons still pass.
  CHECK(status_of(r, "append_equals_stepwise") == conformance_status::passed);
  CHECK(status_of(r, "score_equals_stepwise") == conformance_status::passed);
  CHECK_FALSE(r.passed());
}

TEST_CASE("conformance: differences within the tolerance pass and beyond it fail",
          "[testing][conformance]") {
  // Batch-dependent logits off by 0.5 on one entry of logit magnitude <= 3.
  mock_options o;
  const auto f = [&] { return faulty_model(fault::batch_dependent, o); };
  CHECK(status_of(tandem::check_language_model(f, {.tolerance = {0.6f, 0.0f}}),
                  "append_equals_stepwise") == conformance_status::passed);
  CHECK(status_of(tandem::check_language_model(f, {.tolerance = {0.4f, 0.0f}}),
                  "append_equals_stepwise") == conformance_status::failed);
  // Relative: the table's logits have magnitudes 0.25 to 3.75.
  CHECK(status_of(tandem::check_language_model(f, {.tolerance = {0.0f, 3.0f}}),
                  "append_equals_stepwise") == conformance_status::passed);
  CHECK(status_of(tandem::check_language_model(f, {.tolerance = {0.0f, 0.1f}}),
                  "append_equals_stepwise") == conformance_status::failed);
}

TEST_CASE("conformance: capabilities a model lacks are not applicable, never passed",
          "[testing][conformance]") {
  const conformance_report r = tandem::check_language_model([] { return bare_model(); });
  INFO(text_of(r));
  for (const char* name :
       {"score_equals_stepwise", "rewind_then_append_equals_fresh",
        "rewind_out_of_range_changes_nothing", "score_size_mismatch_changes_nothing",
        "context_overflow_changes_nothing"})
    CHECK(status_of(r, name) == conformance_status::not_applicable);
  CHECK(status_of(r, "append_equals_stepwise") == conformance_status::passed);
  CHECK(status_of(r, "invalid_token_changes_nothing") == conformance_status::passed);
  CHECK(r.passed());
  // A context too long to fill is not applicable either.
  const conformance_report unlimited = tandem::check_language_model([] { return mock_model(); });
  CHECK(status_of(unlimited, "context_overflow_changes_nothing") ==
        conformance_status::not_applicable);
  // A report of nothing but "not applicable" proves nothing.
  conformance_report empty;
  empty.add("x", conformance_status::not_applicable, "%s", "why");
  CHECK_FALSE(empty.passed());
}

TEST_CASE("conformance: the factory may return result<> or a pointer, and its failure is reported",
          "[testing][conformance]") {
  const conformance_report from_result = tandem::check_language_model(
      []() -> tandem::result<mock_model> { return mock_model(mock_options{}); });
  CHECK(from_result.passed());
  const conformance_report from_pointer =
      tandem::check_language_model([] { return std::make_unique<mock_model>(); });
  CHECK(from_pointer.passed());

  const conformance_report failing = tandem::check_language_model(
      []() -> tandem::result<mock_model> { return errc::out_of_memory; });
  CHECK(status_of(failing, "make_fresh_session") == conformance_status::failed);
  CHECK(failing.find("make_fresh_session")->message().find("out_of_memory") !=
        std::string_view::npos);
  CHECK_FALSE(failing.passed());
  const conformance_report null =
      tandem::check_language_model([] { return std::unique_ptr<mock_model>(); });
  CHECK(status_of(null, "make_fresh_session") == conformance_status::failed);
}

TEST_CASE("conformance: given tokens are used and bad ones are reported as options",
          "[testing][conformance]") {
  // The logits turn NaN at a context of 6 tokens: the checks fail only when the given
  // sequence is long enough to get there.
  mock_options o;
  o.non_finite_at = 6;
  const token_id five[] = {1, 2, 3, 4, 5};
  CHECK(tandem::check_language_model([&] { return mock_model(o); }, {.tokens = five}).passed());
  const token_id seven[] = {1, 2, 3, 4, 5, 6, 7};
  CHECK_FALSE(
      tandem::check_language_model([&] { return mock_model(o); }, {.tokens = seven}).passed());

  const token_id three[] = {1, 2, 3};
  CHECK(status_of(tandem::check_language_model([] { return mock_model(); }, {.tokens = three}),
                  "options") == conformance_status::failed);
  const token_id outside[] = {1, 2, 16, 3};
  CHECK(status_of(tandem::check_language_model([] { return mock_model(); }, {.tokens = outside}),
                  "options") == conformance_status::failed);
}

TEST_CASE("conformance: a correct tokenizer passes and each broken one fails its check",
          "[testing][conformance]") {
  const tandem_test::mock_tokenizer good;
  const conformance_report r = tandem::check_tokenizer(good, mock_texts);
  INFO(text_of(r));
  CHECK(r.passed());
  CHECK(r.count(conformance_status::passed) == 4);
  TANDEM_CHECK_CONFORMANCE(r);

  const auto drops =
      tandem::check_tokenizer(faulty_tokenizer(tok_fault::decode_drops_dots), mock_texts);
  CHECK(status_of(drops, "tokenizer_round_trip") == conformance_status::failed);
  CHECK(drops.find("tokenizer_round_trip")->message().find("at byte 9") != std::string_view::npos);
  const auto clears =
      tandem::check_tokenizer(faulty_tokenizer(tok_fault::encode_clears), mock_texts);
  CHECK(status_of(clears, "tokenizer_appends") == conformance_status::failed);
  CHECK(status_of(clears, "tokenizer_round_trip") == conformance_status::passed);
  const auto bad_piece =
      tandem::check_tokenizer(faulty_tokenizer(tok_fault::piece_of_bad_id_succeeds), mock_texts);
  CHECK(status_of(bad_piece, "tokenizer_invalid_token") == conformance_status::failed);

  const auto none = tandem::check_tokenizer(good, {});
  CHECK(status_of(none, "tokenizer_round_trip") == conformance_status::not_applicable);
  CHECK(status_of(none, "tokenizer_invalid_token") == conformance_status::passed);
}

TEST_CASE("conformance: a report prints one line per check and truncates safely",
          "[testing][conformance]") {
  conformance_report r;
  r.add("first_check", conformance_status::passed, "%s", "");
  r.add("second_check", conformance_status::failed, "row %d differs", 3);
  r.add("third_check", conformance_status::not_applicable, "no rewind");
  const std::string text = text_of(r);
  CHECK(text ==
        "conformance: 1 passed, 1 failed, 1 not applicable\n"
        "  passed          first_check\n"
        "  FAILED          second_check: row 3 differs\n"
        "  not applicable  third_check: no rewind\n");
  char small[20];
  CHECK(r.format(small, sizeof small) == 19);
  CHECK(std::string(small) == text.substr(0, 19));
  CHECK(r.format(small, 0) == 0);

  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  REQUIRE(r.print(f) == errc::ok);
  std::rewind(f);
  std::string printed(text.size() + 8, '\0');
  printed.resize(std::fread(printed.data(), 1, printed.size(), f));
  std::fclose(f);
  CHECK(printed == text);

  conformance_report both = r;
  both.append(r);
  CHECK(both.checks().size() == 6);
  CHECK(both.count(conformance_status::failed) == 2);
}

TEST_CASE("conformance: the Catch2 adapter fails a test case on a failed check",
          "[testing][conformance][!shouldfail]") {
  mock_options o;
  o.non_finite_at = 3;
  TANDEM_CHECK_CONFORMANCE(tandem::check_language_model([&] { return mock_model(o); }));
}
