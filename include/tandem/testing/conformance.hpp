// tandem: the public conformance suite for model backends and tokenizers.
/// \file
/// `check_language_model` runs the LanguageModel contract (core/concepts.hpp) against
/// fresh sessions of a backend and `check_tokenizer` the Tokenizer contract against a
/// tokenizer; both return a `conformance_report` that lists every check by a stable name
/// as passed, failed (with what differed and where) or not applicable (a capability the
/// model does not offer, never counted as passed).
///
/// Framework-free: no exceptions, no RTTI, no iostreams; print a report with
/// `conformance_report::print` or `format`, or hand it to Catch2 with
/// <tandem/testing/catch2.hpp>. Opt-in: <tandem/tandem.hpp> does not include it.
///
/// The checks of `check_language_model` (names are stable; docs/backends.md, "Checking
/// your backend", says what each proves):
/// - `sizes`: vocab_size() > 0 and constant, size() 0 when fresh and counting appended
///   tokens, logits() of vocab_size() entries after every append;
/// - `logits_finite`: no NaN and no +inf in any logits seen (-inf means "masked");
/// - `append_equals_stepwise`: logits after one append of the whole sequence, and after
///   each of several multi-token appends, equal the step-by-step reference (one token per
///   append, each in a fresh session's own history);
/// - `score_equals_stepwise` (Scoring): the rows of score(), from an empty context and
///   after a prefix, in one call and in several, equal the reference rows; size() counts
///   the scored tokens and logits() equals the last row;
/// - `rewind_then_append_equals_fresh` (Rewindable): after rewind(n) (to the start too),
///   appending other tokens, rewinding them and appending the original tail gives the
///   reference logits; rewind(0) changes nothing; with Scoring, score after rewind too;
/// - `rewind_out_of_range_changes_nothing` (Rewindable);
/// - `invalid_token_changes_nothing`: append (and score) of a span holding -1, vocab_size()
///   or 2^30 returns invalid_token, and size() and logits() are as before;
/// - `score_size_mismatch_changes_nothing` (Scoring): rows one float short or long, or
///   empty, give size_mismatch and change nothing;
/// - `context_overflow_changes_nothing` (HasContextLength, context_length() at most
///   `conformance_options::max_context_fill`): appending (and scoring) past the context
///   gives context_overflow and changes nothing; the last free slot can still be filled.
/// After every error a check also appends the next token and compares its logits with the
/// reference: the session must still be usable and unaffected.
///
/// `check_multi_sequence_model` runs the MultiSequenceModel contract
/// (core/multi_sequence.hpp): random interleavings of open, batched append, fork, rewind
/// and close, each sequence compared with a lone session fed the same tokens, and each
/// error case (invalid sequence, bad batch, no free sequence, per-sequence overflow)
/// leaving every sequence as it was; its checks are listed at the function.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/multi_sequence.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// The outcome of one conformance check.
enum class conformance_status : std::uint8_t {
  passed,          ///< the check ran and the backend met the contract
  failed,          ///< the check ran and the backend broke the contract (see the message)
  not_applicable,  ///< the check did not run: a capability the model does not offer
};

/// Stable lower-case name of a status: "passed", "failed", "not applicable".
[[nodiscard]] constexpr std::string_view to_string(conformance_status s) noexcept {
  switch (s) {
    case conformance_status::passed:
      return "passed";
    case conformance_status::failed:
      return "failed";
    case conformance_status::not_applicable:
      return "not applicable";
  }
  return "unknown";
}

/// One entry of a conformance_report: a stable check name, its status and a message
/// (what differed and where for a failure, why for not applicable; may be empty for a
/// pass). A plain value; text longer than the buffers is cut.
struct conformance_check {
  /// Capacity of the name, including its terminating NUL.
  static constexpr std::size_t name_capacity = 48;
  /// Capacity of the message, including its terminating NUL.
  static constexpr std::size_t message_capacity = 240;

  char name_text[name_capacity] = {};                              ///< NUL-terminated check name
  conformance_status status = conformance_status::not_applicable;  ///< the outcome
  char message_text[message_capacity] = {};                        ///< NUL-terminated message

  /// The check's name, e.g. "score_equals_stepwise" (a view into this object).
  [[nodiscard]] std::string_view name() const noexcept { return name_text; }
  /// The message (a view into this object).
  [[nodiscard]] std::string_view message() const noexcept { return message_text; }
  /// True when the status is `failed`.
  [[nodiscard]] bool failed() const noexcept { return status == conformance_status::failed; }
};

/// The result of a conformance run: its checks in the order they ran. Copyable; owns its
/// entries. Building one (`add`) allocates; reading and printing do not.
class conformance_report {
 public:
  /// Every check, in the order they ran.
  [[nodiscard]] std::span<const conformance_check> checks() const noexcept { return checks_; }

  /// The check named `name`, or null when the report has none of that name.
  [[nodiscard]] const conformance_check* find(std::string_view name) const noexcept {
    for (const auto& c : checks_)
      if (c.name() == name) return &c;
    return nullptr;
  }

  /// How many checks have status `s`.
  [[nodiscard]] std::size_t count(conformance_status s) const noexcept {
    std::size_t n = 0;
    for (const auto& c : checks_) n += c.status == s;
    return n;
  }

  /// True when no check failed and at least one passed (a report of only "not
  /// applicable" checks proves nothing and does not pass).
  [[nodiscard]] bool passed() const noexcept {
    return count(conformance_status::failed) == 0 && count(conformance_status::passed) > 0;
  }

  /// Records a check named `name` (cut to conformance_check::name_capacity - 1 bytes) with
  /// status `s` and a printf-formatted message. For suites built on this one; the
  /// entries of the built-in checks are recorded the same way.
#if defined(__GNUC__) || defined(__clang__)
  __attribute__((format(printf, 4, 5)))
#endif
  void
  add(std::string_view name, conformance_status s, const char* format, ...) {
    conformance_check& c = checks_.emplace_back();
    const std::size_t n = name.size() < c.name_capacity ? name.size() : c.name_capacity - 1;
    std::memcpy(c.name_text, name.data(), n);
    c.name_text[n] = '\0';
    c.status = s;
    std::va_list args;
    va_start(args, format);
    const int written = std::vsnprintf(c.message_text, c.message_capacity, format, args);
    va_end(args);
    if (written < 0) c.message_text[0] = '\0';
  }

  /// Appends the checks of `other` (e.g. a tokenizer's report to a model's).
  void append(const conformance_report& other) {
    checks_.insert(checks_.end(), other.checks_.begin(), other.checks_.end());
  }

  /// Writes the report as text into `out` (at most `size` bytes, NUL-terminated, cut when
  /// too long): a summary line, "conformance: 8 passed, 1 failed, 2 not applicable", then
  /// one line per check, "  FAILED          name: message". Returns the number of
  /// characters written, excluding the NUL; `size` 0 writes nothing.
  std::size_t format(char* out, std::size_t size) const noexcept {
    if (size == 0) return 0;
    std::size_t used = 0;
    out[0] = '\0';
    char line[conformance_check::name_capacity + conformance_check::message_capacity + 32];
    for (std::size_t i = 0; i <= checks_.size(); ++i) {
      const int n = i == 0 ? summary(line, sizeof line) : entry(checks_[i - 1], line, sizeof line);
      if (n <= 0) continue;
      const std::size_t len = std::strlen(line);
      const std::size_t room = size - 1 - used;
      const std::size_t take = len < room ? len : room;
      std::memcpy(out + used, line, take);
      used += take;
      out[used] = '\0';
    }
    return used;
  }

  /// Writes the same text as format() to `f`. Errors: `io_error` when writing fails
  /// (what was written stays written).
  [[nodiscard]] errc print(std::FILE* f) const noexcept {
    char line[conformance_check::name_capacity + conformance_check::message_capacity + 32];
    for (std::size_t i = 0; i <= checks_.size(); ++i) {
      const int n = i == 0 ? summary(line, sizeof line) : entry(checks_[i - 1], line, sizeof line);
      if (n < 0 || std::fputs(line, f) < 0) return errc::io_error;
    }
    return std::fflush(f) == 0 ? errc::ok : errc::io_error;
  }

 private:
  int summary(char* line, std::size_t size) const noexcept {
    return std::snprintf(line, size, "conformance: %zu passed, %zu failed, %zu not applicable\n",
                         count(conformance_status::passed), count(conformance_status::failed),
                         count(conformance_status::not_applicable));
  }
  static int entry(const conformance_check& c, char* line, std::size_t size) noexcept {
    const char* label = c.status == conformance_status::passed   ? "passed"
                        : c.status == conformance_status::failed ? "FAILED"
                                                                 : "not applicable";
    return std::snprintf(line, size, "  %-15s %s%s%s\n", label, c.name_text,
                         c.message_text[0] != '\0' ? ": " : "", c.message_text);
  }
  std::vector<conformance_check> checks_;
};

/// How close two logits must be to count as equal: |got - want| <= absolute + relative *
/// |want|. Equal infinities match; two NaNs match here (NaN is `logits_finite`'s
/// failure, so that it is reported once, under that name).
struct conformance_tolerance {
  float absolute = 1e-3f;  ///< allowed absolute difference
  float relative = 1e-3f;  ///< allowed difference per unit of |want|

  /// Bit-for-bit equality (up to -0 == +0): for deterministic CPU backends whose batched
  /// and single-token passes run the same arithmetic (the n-gram model, table models).
  [[nodiscard]] static constexpr conformance_tolerance exact() noexcept { return {0.0f, 0.0f}; }
};

/// Options of check_language_model.
struct conformance_options {
  /// The token sequence the checks feed (at least 4 ids, each in [0, vocab_size())). The
  /// caller keeps it alive during the call. Empty: `length` ids drawn from `seed`.
  std::span<const token_id> tokens{};
  /// Length of the drawn sequence when `tokens` is empty (at least 4).
  std::size_t length = 16;
  /// Seed of the drawn sequence.
  std::uint64_t seed = 1;
  /// Tolerance of every comparison with the step-by-step reference. The default,
  /// |a - b| <= 1e-3 * (1 + |b|), suits float32 CPU backends whose batched and
  /// single-token passes round differently (llama.cpp on one CPU thread, tiny test model:
  /// under 1e-5 up to 23 tokens of context, about 2e-4 from 32 on); widen it for half
  /// precision or GPUs; use
  /// conformance_tolerance::exact() for backends that must agree bit for bit. Checks that
  /// a failed call left the logits as they were are always exact.
  conformance_tolerance tolerance{};
  /// `context_overflow_changes_nothing` fills the context to context_length() - 1 tokens;
  /// above this length it is not applicable (make sessions with a small context to run it).
  std::size_t max_context_fill = 4096;
};

namespace detail {

/// Finds the LanguageModel inside what a session factory returns: the model itself, a
/// result<> or a pointer-like object (unique_ptr, optional) holding one.
template <class R>
struct conformance_session;

template <class R>
requires LanguageModel<R>
struct conformance_session<R> {
  using type = R;
  static type* get(R& r, errc&) noexcept { return &r; }
};

template <class R>
requires(!LanguageModel<R> && requires(R & r) {
  static_cast<bool>(r);
  *r;
}) struct conformance_session<R> {
  using inner = std::remove_reference_t<decltype(*std::declval<R&>())>;
  using type = typename conformance_session<inner>::type;
  static type* get(R& r, errc& e) noexcept {
    if (!static_cast<bool>(r)) {
      if constexpr (requires { r.error(); })
        e = r.error();
      else
        e = errc::invalid_argument;
      return nullptr;
    }
    return conformance_session<inner>::get(*r, e);
  }
};

/// The first failure of one check, and how many more there were.
class conformance_recorder {
 public:
  [[nodiscard]] bool failed() const noexcept { return failed_; }
#if defined(__GNUC__) || defined(__clang__)
  __attribute__((format(printf, 2, 3)))
#endif
  void
  fail(const char* format, ...) noexcept {
    if (failed_) {
      ++more_;
      return;
    }
    failed_ = true;
    std::va_list args;
    va_start(args, format);
    const int n = std::vsnprintf(text_, sizeof text_, format, args);
    va_end(args);
    if (n < 0) text_[0] = '\0';
  }
  void record(conformance_report& r, std::string_view name) const {
    if (!failed_)
      r.add(name, conformance_status::passed, "%s", "");
    else if (more_ == 0)
      r.add(name, conformance_status::failed, "%s", text_);
    else
      r.add(name, conformance_status::failed, "%s (and %zu more)", text_, more_);
  }

 private:
  bool failed_ = false;
  std::size_t more_ = 0;
  char text_[conformance_check::message_capacity] = {};
};

inline bool conformance_close(float got, float want, const conformance_tolerance& tol) noexcept {
  if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want);
  if (std::isinf(got) || std::isinf(want)) return got == want;
  return std::fabs(got - want) <= tol.absolute + tol.relative * std::fabs(want);
}

/// Compares `got` with the reference row after token `pos`; records the first difference
/// in `rec` with `what` (the call that produced `got`). Returns true when they match.
inline bool conformance_compare(conformance_recorder& rec, const char* what, std::size_t pos,
                                std::span<const token_id> tokens, std::span<const float> got,
                                std::span<const float> want,
                                const conformance_tolerance& tol) noexcept {
  if (got.size() != want.size()) {
    rec.fail("%s: logits after token %zu (id %d) have %zu entries, the reference %zu", what, pos,
             static_cast<int>(tokens[pos]), got.size(), want.size());
    return false;
  }
  for (std::size_t j = 0; j < got.size(); ++j) {
    if (!conformance_close(got[j], want[j], tol)) {
      rec.fail(
          "%s: after token %zu (id %d), logit %zu is %.9g, step-by-step %.9g (tolerance %g + "
          "%g*|ref|)",
          what, pos, static_cast<int>(tokens[pos]), j, static_cast<double>(got[j]),
          static_cast<double>(want[j]), static_cast<double>(tol.absolute),
          static_cast<double>(tol.relative));
      return false;
    }
  }
  return true;
}

/// True when `a` and `b` hold the same floats bit for bit (NaNs of one payload alike).
inline bool conformance_same(std::span<const float> a, std::span<const float> b) noexcept {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

/// Checks that a call on purpose of error `want` (described by `what`) returned `got` and
/// left `m` with `size` tokens and the logits `before`; records the difference otherwise.
/// Returns true when it did.
template <class M>
bool conformance_failed(conformance_recorder& rec, const M& m, const char* what, errc got,
                        errc want, std::size_t size, std::span<const float> before) noexcept {
  if (got != want) {
    rec.fail("%s returned %s, not %s", what, to_string(got).data(), to_string(want).data());
    return false;
  }
  if (m.size() != size) {
    rec.fail("%s changed size() from %zu to %zu", what, size, std::size_t(m.size()));
    return false;
  }
  if (!conformance_same(m.logits(), before)) {
    rec.fail("%s changed logits()", what);
    return false;
  }
  return true;
}

inline std::uint64_t conformance_splitmix(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Everything the model checks share: the factory, the token sequence and the
/// step-by-step reference rows (rows[i] = logits after tokens[0..i], one append each).
template <class Make>
class conformance_run {
 public:
  using made = std::invoke_result_t<Make&>;
  using model = typename conformance_session<made>::type;

  /// A fresh session from the factory; `get()` is null when the factory failed.
  class session {
   public:
    explicit session(Make& make) : holder_(make()) {
      model_ = conformance_session<made>::get(holder_, error_);
    }
    session(const session&) = delete;
    session& operator=(const session&) = delete;
    [[nodiscard]] model* get() const noexcept { return model_; }
    [[nodiscard]] errc error() const noexcept { return error_; }

   private:
    made holder_;
    errc error_ = errc::ok;
    model* model_ = nullptr;
  };

  conformance_run(Make& make, const conformance_options& opts) : make_(make), opts_(opts) {}

  /// Draws or checks the tokens and walks the reference; records `sizes` and
  /// `logits_finite`. False when nothing else can run (the failure is in the report).
  bool prepare(conformance_report& report) {
    session s(make_);
    model* m = s.get();
    if (m == nullptr) {
      report.add("make_fresh_session", conformance_status::failed,
                 "the factory returned no session (%s)", to_string(s.error()).data());
      return false;
    }
    vocab_ = static_cast<std::size_t>(m->vocab_size());
    if (vocab_ == 0) {
      report.add("sizes", conformance_status::failed, "vocab_size() is 0");
      return false;
    }
    if (opts_.tokens.empty()) {
      std::uint64_t state = opts_.seed;
      for (std::size_t i = 0; i < opts_.length; ++i)
        tokens_.push_back(static_cast<token_id>(conformance_splitmix(state) % vocab_));
    } else {
      tokens_.assign(opts_.tokens.begin(), opts_.tokens.end());
    }
    if (tokens_.size() < 4) {
      report.add("options", conformance_status::failed,
                 "the token sequence has %zu ids; the checks need at least 4", tokens_.size());
      return false;
    }
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      if (tokens_[i] < 0 || static_cast<std::size_t>(tokens_[i]) >= vocab_) {
        report.add("options", conformance_status::failed,
                   "token %zu of the sequence (id %d) is outside the vocabulary of %zu", i,
                   static_cast<int>(tokens_[i]), vocab_);
        return false;
      }
    }

    conformance_recorder sizes, finite;
    if (m->size() != 0) sizes.fail("a fresh session has size() %zu", std::size_t(m->size()));
    const std::size_t n = tokens_.size();
    rows_.assign(n * vocab_, 0.0f);
    bool complete = true;
    for (std::size_t i = 0; i < n; ++i) {
      const errc e = m->append(std::span<const token_id>(&tokens_[i], 1));
      if (e != errc::ok) {
        sizes.fail("step-by-step append of token %zu (id %d) returned %s", i,
                   static_cast<int>(tokens_[i]), to_string(e).data());
        complete = false;
        break;
      }
      if (m->size() != i + 1)
        sizes.fail("after appending %zu tokens one at a time, size() is %zu", i + 1,
                   std::size_t(m->size()));
      if (static_cast<std::size_t>(m->vocab_size()) != vocab_)
        sizes.fail("vocab_size() changed from %zu to %zu after token %zu", vocab_,
                   std::size_t(m->vocab_size()), i);
      const std::span<const float> l = m->logits();
      if (l.size() != vocab_) {
        sizes.fail("after token %zu, logits() has %zu entries, vocab_size() is %zu", i, l.size(),
                   vocab_);
        complete = false;
        break;
      }
      for (std::size_t j = 0; j < vocab_; ++j) {
        if (std::isnan(l[j]) || l[j] == std::numeric_limits<float>::infinity()) {
          finite.fail("after token %zu (id %d), logit %zu is %g", i, static_cast<int>(tokens_[i]),
                      j, static_cast<double>(l[j]));
          break;  // one report per position
        }
      }
      std::memcpy(rows_.data() + i * vocab_, l.data(), vocab_ * sizeof(float));
    }
    if (complete) {
      session whole(make_);
      if (model* w = whole.get(); w == nullptr) {
        sizes.fail("a second fresh session could not be made (%s)",
                   to_string(whole.error()).data());
      } else if (const errc e = w->append(tokens_); e != errc::ok) {
        sizes.fail("append of all %zu tokens at once returned %s", n, to_string(e).data());
      } else {
        if (w->size() != n)
          sizes.fail("after one append of %zu tokens, size() is %zu", n, std::size_t(w->size()));
        if (w->logits().size() != vocab_)
          sizes.fail("after one append of %zu tokens, logits() has %zu entries", n,
                     w->logits().size());
      }
    }
    sizes.record(report, "sizes");
    finite.record(report, "logits_finite");
    if (!complete) {
      report.add("reference", conformance_status::failed,
                 "the step-by-step reference could not be computed; the other checks did not "
                 "run");
      return false;
    }
    return true;
  }

  [[nodiscard]] std::span<const token_id> tokens() const noexcept { return tokens_; }
  [[nodiscard]] std::span<const token_id> tokens(std::size_t from, std::size_t to) const noexcept {
    return std::span<const token_id>(tokens_).subspan(from, to - from);
  }
  /// The reference logits after tokens[0..pos].
  [[nodiscard]] std::span<const float> row(std::size_t pos) const noexcept {
    return std::span<const float>(rows_).subspan(pos * vocab_, vocab_);
  }
  [[nodiscard]] std::size_t vocab() const noexcept { return vocab_; }
  [[nodiscard]] const conformance_tolerance& tolerance() const noexcept { return opts_.tolerance; }
  [[nodiscard]] const conformance_options& options() const noexcept { return opts_; }
  [[nodiscard]] Make& make() noexcept { return make_; }

  /// Makes a fresh session holding tokens[0..prefix); records a failure and returns null
  /// when that is impossible. `s` keeps the session alive.
  model* start(session& s, std::size_t prefix, conformance_recorder& rec) {
    model* m = s.get();
    if (m == nullptr) {
      rec.fail("the factory returned no session (%s)", to_string(s.error()).data());
      return nullptr;
    }
    if (prefix == 0) return m;
    if (const errc e = m->append(tokens(0, prefix)); e != errc::ok) {
      rec.fail("append of the first %zu tokens returned %s", prefix, to_string(e).data());
      return nullptr;
    }
    return m;
  }

  /// After the calls that failed on purpose (each checked by conformance_failed), appends
  /// tokens[pos] to `m`, which holds tokens[0..pos), and compares with the reference.
  void expect_usable(conformance_recorder& rec, model& m, const char* what, std::size_t pos) {
    if (rec.failed() || pos >= tokens_.size()) return;
    if (const errc e = m.append(tokens(pos, pos + 1)); e != errc::ok) {
      rec.fail("after %s, appending the next token returned %s", what, to_string(e).data());
      return;
    }
    conformance_compare(rec, what, pos, tokens_, m.logits(), row(pos), opts_.tolerance);
  }

 private:
  Make& make_;
  const conformance_options& opts_;
  std::vector<token_id> tokens_;
  std::vector<float> rows_;
  std::size_t vocab_ = 0;
};

template <class Run>
void conformance_check_append(Run& run, conformance_report& report) {
  conformance_recorder rec;
  const std::size_t n = run.tokens().size();
  {
    typename Run::session s(run.make());
    if (auto* m = run.start(s, n, rec))
      conformance_compare(rec, "one append of every token", n - 1, run.tokens(), m->logits(),
                          run.row(n - 1), run.tolerance());
  }
  {
    typename Run::session s(run.make());
    if (auto* m = run.start(s, 0, rec)) {
      constexpr std::size_t pieces[] = {2, 1, 3};
      for (std::size_t at = 0, k = 0; at < n; ++k) {
        const std::size_t to = std::min(n, at + pieces[k % 3]);
        if (const errc e = m->append(run.tokens(at, to)); e != errc::ok) {
          rec.fail("append of tokens [%zu, %zu) returned %s", at, to, to_string(e).data());
          break;
        }
        if (!conformance_compare(rec, "appends of 2, 1 and 3 tokens", to - 1, run.tokens(),
                                 m->logits(), run.row(to - 1), run.tolerance()))
          break;
        at = to;
      }
    }
  }
  rec.record(report, "append_equals_stepwise");
}

/// score(tokens[from..to)) on `m` (which holds tokens[0..from)); compares every row, the
/// size and logits() with the reference. Returns false after a failure.
template <class Run, class M>
bool conformance_score_range(Run& run, M& m, std::size_t from, std::size_t to,
                             std::vector<float>& rows, conformance_recorder& rec) {
  const std::size_t v = run.vocab();
  rows.assign((to - from) * v, 0.0f);
  if (const errc e = m.score(run.tokens(from, to), rows); e != errc::ok) {
    rec.fail("score of tokens [%zu, %zu) returned %s", from, to, to_string(e).data());
    return false;
  }
  char what[64];
  std::snprintf(what, sizeof what, "score of tokens [%zu, %zu)", from, to);
  for (std::size_t i = from; i < to; ++i) {
    if (!conformance_compare(rec, what, i, run.tokens(),
                             std::span<const float>(rows).subspan((i - from) * v, v), run.row(i),
                             run.tolerance()))
      return false;
  }
  if (m.size() != to) {
    rec.fail("after %s, size() is %zu instead of %zu", what, std::size_t(m.size()), to);
    return false;
  }
  std::snprintf(what, sizeof what, "logits() after score of tokens [%zu, %zu)", from, to);
  return conformance_compare(rec, what, to - 1, run.tokens(), m.logits(), run.row(to - 1),
                             run.tolerance());
}

template <class Run>
void conformance_check_score(Run& run, conformance_report& report) {
  conformance_recorder rec;
  const std::size_t n = run.tokens().size();
  std::vector<float> rows;
  {
    typename Run::session s(run.make());
    if (auto* m = run.start(s, 0, rec)) conformance_score_range(run, *m, 0, n, rows, rec);
  }
  {
    const std::size_t prefix = n / 3 > 0 ? n / 3 : 1;
    typename Run::session s(run.make());
    if (auto* m = run.start(s, prefix, rec)) {
      for (std::size_t at = prefix; at < n;) {
        const std::size_t to = std::min(n, at + 3);
        if (!conformance_score_range(run, *m, at, to, rows, rec)) break;
        at = to;
      }
    }
  }
  rec.record(report, "score_equals_stepwise");
}

template <class Run>
void conformance_check_rewind(Run& run, conformance_report& report) {
  conformance_recorder rec;
  const std::size_t n = run.tokens().size(), v = run.vocab();
  typename Run::session s(run.make());
  if (auto* m = run.start(s, n, rec)) {
    std::vector<token_id> other;
    const std::size_t cuts[] = {1, 3, n / 2, n};
    for (const std::size_t cut : cuts) {
      if (rec.failed()) break;
      if (const errc e = m->rewind(cut); e != errc::ok) {
        rec.fail("rewind(%zu) of %zu tokens returned %s", cut, n, to_string(e).data());
        break;
      }
      if (m->size() != n - cut) {
        rec.fail("after rewind(%zu) of %zu tokens, size() is %zu", cut, n, std::size_t(m->size()));
        break;
      }
      // Other tokens in the dropped positions, dropped again: nothing of them may remain.
      other.clear();
      for (std::size_t i = n - cut; i < n; ++i)
        other.push_back(
            static_cast<token_id>((static_cast<std::size_t>(run.tokens()[i]) + 1 + i % 3) % v));
      if (const errc e = m->append(other); e != errc::ok) {
        rec.fail("after rewind(%zu), append of %zu other tokens returned %s", cut, cut,
                 to_string(e).data());
        break;
      }
      if (const errc e = m->rewind(cut); e != errc::ok) {
        rec.fail("second rewind(%zu) returned %s", cut, to_string(e).data());
        break;
      }
      if (const errc e = m->append(run.tokens(n - cut, n)); e != errc::ok) {
        rec.fail("after rewind(%zu), append of the original %zu tokens returned %s", cut, cut,
                 to_string(e).data());
        break;
      }
      char what[80];
      std::snprintf(what, sizeof what, "rewind(%zu), other tokens, rewind(%zu), original tail", cut,
                    cut);
      if (m->size() != n)
        rec.fail("after %s, size() is %zu instead of %zu", what, std::size_t(m->size()), n);
      else
        conformance_compare(rec, what, n - 1, run.tokens(), m->logits(), run.row(n - 1),
                            run.tolerance());
    }
    if (!rec.failed()) {
      if (const errc e = m->rewind(0); e != errc::ok)
        rec.fail("rewind(0) returned %s", to_string(e).data());
      else if (m->size() != n)
        rec.fail("rewind(0) changed size() from %zu to %zu", n, std::size_t(m->size()));
    }
    if constexpr (can_score_v<typename Run::model>) {
      // The speculative pattern: score a draft, rewind the rejected part, score again.
      const std::size_t keep = n / 2;
      std::vector<float> rows;
      if (!rec.failed()) {
        if (const errc e = m->rewind(n - keep); e != errc::ok)
          rec.fail("rewind(%zu) before a score returned %s", n - keep, to_string(e).data());
        else
          conformance_score_range(run, *m, keep, n, rows, rec);
      }
    }
  }
  rec.record(report, "rewind_then_append_equals_fresh");
}

/// The frame of the checks that errors change nothing: a fresh session holding the first
/// half of the tokens; `calls(m, pos, before, rec)` makes the calls that must fail and
/// checks each with conformance_failed; then the next token must give the reference.
template <class Run, class Calls>
void conformance_error_check(Run& run, conformance_report& report, std::string_view name,
                             const char* what, Calls&& calls) {
  conformance_recorder rec;
  const std::size_t pos = run.tokens().size() / 2;
  typename Run::session s(run.make());
  if (auto* m = run.start(s, pos, rec)) {
    const std::vector<float> before(m->logits().begin(), m->logits().end());
    calls(*m, pos, std::span<const float>(before), rec);
    run.expect_usable(rec, *m, what, pos);
  }
  rec.record(report, name);
}

template <class Run>
void conformance_check_rewind_range(Run& run, conformance_report& report) {
  conformance_error_check(
      run, report, "rewind_out_of_range_changes_nothing", "rewind past the start",
      [](auto& m, std::size_t pos, std::span<const float> before, conformance_recorder& rec) {
        char what[64];
        for (const std::size_t bad : {pos + 1, std::numeric_limits<std::size_t>::max()}) {
          std::snprintf(what, sizeof what, "rewind(%zu) of %zu tokens", bad, pos);
          if (!conformance_failed(rec, m, what, m.rewind(bad), errc::rewind_out_of_range, pos,
                                  before))
            break;
        }
      });
}

template <class Run>
void conformance_check_invalid_token(Run& run, conformance_report& report) {
  const std::size_t v = run.vocab();
  conformance_error_check(
      run, report, "invalid_token_changes_nothing", "an invalid token",
      [&](auto& m, std::size_t pos, std::span<const float> before, conformance_recorder& rec) {
        const token_id bad_ids[] = {-1, static_cast<token_id>(v), token_id{1} << 30};
        std::vector<float> rows(2 * v);
        char what[64];
        for (const token_id bad : bad_ids) {
          const token_id t[] = {run.tokens()[pos], bad};
          std::snprintf(what, sizeof what, "append of {%d, %d}", static_cast<int>(t[0]),
                        static_cast<int>(bad));
          if (!conformance_failed(rec, m, what, m.append(t), errc::invalid_token, pos, before))
            break;
          if constexpr (can_score_v<typename Run::model>) {
            std::snprintf(what, sizeof what, "score of {%d, %d}", static_cast<int>(t[0]),
                          static_cast<int>(bad));
            if (!conformance_failed(rec, m, what, m.score(t, rows), errc::invalid_token, pos,
                                    before))
              break;
          }
        }
      });
}

template <class Run>
void conformance_check_size_mismatch(Run& run, conformance_report& report) {
  const std::size_t v = run.vocab();
  conformance_error_check(
      run, report, "score_size_mismatch_changes_nothing", "a size mismatch",
      [&](auto& m, std::size_t pos, std::span<const float> before, conformance_recorder& rec) {
        std::vector<float> rows(2 * v + 1);
        char what[96];
        for (const std::size_t size : {2 * v - 1, 2 * v + 1, std::size_t{0}}) {
          std::snprintf(what, sizeof what, "score of 2 tokens into %zu floats (vocabulary %zu)",
                        size, v);
          if (!conformance_failed(
                  rec, m, what,
                  m.score(run.tokens(pos, pos + 2), std::span<float>(rows).first(size)),
                  errc::size_mismatch, pos, before))
            break;
        }
      });
}

template <class Run>
void conformance_check_overflow(Run& run, conformance_report& report) {
  using model = typename Run::model;
  constexpr const char* name = "context_overflow_changes_nothing";
  if constexpr (!has_context_length_v<model>) {
    report.add(name, conformance_status::not_applicable, "the model has no context_length()");
  } else {
    conformance_recorder rec;
    typename Run::session s(run.make());
    if (auto* m = run.start(s, 0, rec)) {
      const auto length = static_cast<std::size_t>(m->context_length());
      if (length == std::numeric_limits<std::size_t>::max()) {
        report.add(name, conformance_status::not_applicable, "the context is unbounded");
        return;
      }
      if (length < 2 || length > run.options().max_context_fill) {
        report.add(name, conformance_status::not_applicable,
                   "context_length() is %zu; the check fills contexts of 2 to %zu tokens "
                   "(conformance_options::max_context_fill)",
                   length, run.options().max_context_fill);
        return;
      }
      const std::size_t n = run.tokens().size();
      std::vector<token_id> fill(length - 1);
      for (std::size_t i = 0; i < fill.size(); ++i) fill[i] = run.tokens()[i % n];
      if (const errc e = m->append(fill); e != errc::ok) {
        rec.fail("append of %zu tokens into a context of %zu returned %s", fill.size(), length,
                 to_string(e).data());
      } else {
        const std::vector<float> before(m->logits().begin(), m->logits().end());
        const std::span<const token_id> two = run.tokens(0, 2), one = two.first(1);
        bool ok_so_far =
            conformance_failed(rec, *m, "append of 2 tokens with 1 free slot", m->append(two),
                               errc::context_overflow, length - 1, before);
        if constexpr (can_score_v<model>) {
          std::vector<float> rows(2 * run.vocab());
          ok_so_far = ok_so_far && conformance_failed(rec, *m, "score of 2 tokens with 1 free slot",
                                                      m->score(two, rows), errc::context_overflow,
                                                      length - 1, before);
        }
        if (ok_so_far) {
          if (const errc e = m->append(one); e != errc::ok) {
            rec.fail("append of 1 token into the last free slot returned %s", to_string(e).data());
          } else if (m->size() != length) {
            rec.fail("a full context has size() %zu, context_length() %zu", std::size_t(m->size()),
                     length);
          } else {
            const std::vector<float> full(m->logits().begin(), m->logits().end());
            conformance_failed(rec, *m, "append of 1 token into a full context", m->append(one),
                               errc::context_overflow, length, full);
          }
        }
      }
    }
    rec.record(report, name);
  }
}

}  // namespace detail

/// Runs the LanguageModel contract on sessions made by `make_fresh_session()`, which
/// must return a fresh session (empty context) each call: a LanguageModel by value, a
/// result<> of one, or a pointer-like object (std::unique_ptr, std::optional) holding
/// one; a failed result or an empty pointer is reported as a failure. The checks
/// (listed in this file's header and in docs/backends.md) compare several fresh sessions
/// with a step-by-step reference, so the factory is called about ten times; every
/// session is destroyed before the call returns. Optional capabilities are detected:
/// the checks of a capability the model lacks are `not_applicable`.
///
/// Never fails itself: a broken backend gives failed checks, and a factory that fails,
/// a token sequence shorter than 4 or outside the vocabulary give a failed
/// "make_fresh_session" or "options" check. State left: none (the sessions are gone).
template <class MakeSession>
requires std::invocable<MakeSession&>
[[nodiscard]] conformance_report check_language_model(MakeSession&& make_fresh_session,
                                                      const conformance_options& options = {}) {
  using run_type = detail::conformance_run<std::remove_reference_t<MakeSession>>;
  using model = typename run_type::model;
  conformance_report report;
  run_type run(make_fresh_session, options);
  if (!run.prepare(report)) return report;
  detail::conformance_check_append(run, report);
  if constexpr (can_score_v<model>)
    detail::conformance_check_score(run, report);
  else
    report.add("score_equals_stepwise", conformance_status::not_applicable,
               "the model has no score(tokens, rows)");
  if constexpr (can_rewind_v<model>) {
    detail::conformance_check_rewind(run, report);
    detail::conformance_check_rewind_range(run, report);
  } else {
    report.add("rewind_then_append_equals_fresh", conformance_status::not_applicable,
               "the model has no rewind(n)");
    report.add("rewind_out_of_range_changes_nothing", conformance_status::not_applicable,
               "the model has no rewind(n)");
  }
  detail::conformance_check_invalid_token(run, report);
  if constexpr (can_score_v<model>)
    detail::conformance_check_size_mismatch(run, report);
  else
    report.add("score_size_mismatch_changes_nothing", conformance_status::not_applicable,
               "the model has no score(tokens, rows)");
  detail::conformance_check_overflow(run, report);
  return report;
}

/// Runs the Tokenizer contract on `tok` with each of `texts` (text the tokenizer can
/// spell; include multi-byte UTF-8 where the tokenizer supports it). Checks:
/// - `tokenizer_round_trip`: encode gives ids in [0, vocab_size()) and decode gives the
///   text back;
/// - `tokenizer_appends`: encode and decode append to their outputs, keeping what was
///   there;
/// - `tokenizer_pieces`: piece() of every id succeeds, appends, and the pieces concatenate
///   to the text, or to the text after one leading space (the word-start marker that
///   sentencepiece-style tokenizers put on the first piece and decode drops);
/// - `tokenizer_invalid_token`: decode of ids ending in -1 or vocab_size(), and piece of
///   those ids, return invalid_token and leave the output as it was.
/// Never fails itself; with no texts the first three are `not_applicable`. `tok` is only
/// read.
template <Tokenizer T>
[[nodiscard]] conformance_report check_tokenizer(const T& tok,
                                                 std::span<const std::string_view> texts) {
  conformance_report report;
  const auto v = static_cast<std::size_t>(tok.vocab_size());
  detail::conformance_recorder round, appends, pieces, invalid;
  token_id some_valid = 0;
  for (std::size_t k = 0; k < texts.size(); ++k) {
    const std::string_view text = texts[k];
    std::vector<token_id> ids;
    if (const errc e = tok.encode(text, ids); e != errc::ok) {
      round.fail("encode of text %zu returned %s", k, to_string(e).data());
      continue;
    }
    bool in_vocab = true;
    for (std::size_t i = 0; i < ids.size() && in_vocab; ++i) {
      if (ids[i] < 0 || static_cast<std::size_t>(ids[i]) >= v) {
        round.fail("encode of text %zu gave id %d at %zu, outside the vocabulary of %zu", k,
                   static_cast<int>(ids[i]), i, v);
        in_vocab = false;
      }
    }
    if (!in_vocab) continue;
    if (!ids.empty()) some_valid = ids.front();
    std::string back;
    if (const errc e = tok.decode(ids, back); e != errc::ok) {
      round.fail("decode of text %zu's %zu ids returned %s", k, ids.size(), to_string(e).data());
      continue;
    }
    if (back != text) {
      std::size_t at = 0;
      while (at < back.size() && at < text.size() && back[at] == text[at]) ++at;
      round.fail(
          "text %zu does not round-trip: the decoded text (%zu bytes) differs from the "
          "original (%zu bytes) at byte %zu",
          k, back.size(), text.size(), at);
    }

    // Appending: a prefix already in the output is kept and the rest is as before.
    const token_id mark = ids.empty() ? 0 : ids.back();
    std::vector<token_id> more{mark};
    if (const errc e = tok.encode(text, more); e != errc::ok)
      appends.fail("encode of text %zu after one id returned %s", k, to_string(e).data());
    else if (more.front() != mark ||
             !std::equal(more.begin() + 1, more.end(), ids.begin(), ids.end()))
      appends.fail("encode of text %zu into a non-empty vector did not append its ids", k);
    std::string out = "\x01prefix";
    if (const errc e = tok.decode(ids, out); e != errc::ok)
      appends.fail("decode of text %zu after a prefix returned %s", k, to_string(e).data());
    else if (out != "\x01prefix" + back)
      appends.fail("decode of text %zu into a non-empty string did not append its text", k);

    std::string joined = "\x01";
    bool pieces_ok = true;
    for (const token_id id : ids) {
      if (const errc e = tok.piece(id, joined); e != errc::ok) {
        pieces.fail("piece(%d) of text %zu returned %s", static_cast<int>(id), k,
                    to_string(e).data());
        pieces_ok = false;
        break;
      }
    }
    if (pieces_ok) {
      if (joined.empty() || joined.front() != '\x01') {
        pieces.fail("piece() of text %zu did not append to its output", k);
      } else {
        const std::string_view p = std::string_view(joined).substr(1);
        if (p != text && !(p.size() == text.size() + 1 && p.front() == ' ' && p.substr(1) == text))
          pieces.fail("the pieces of text %zu (%zu bytes) do not concatenate to its %zu bytes", k,
                      p.size(), text.size());
      }
    }
  }
  if (texts.empty()) {
    for (const char* name : {"tokenizer_round_trip", "tokenizer_appends", "tokenizer_pieces"})
      report.add(name, conformance_status::not_applicable, "no texts given");
  } else {
    round.record(report, "tokenizer_round_trip");
    appends.record(report, "tokenizer_appends");
    pieces.record(report, "tokenizer_pieces");
  }

  for (const token_id bad : {token_id{-1}, static_cast<token_id>(v)}) {
    std::string out = "keep";
    if (const errc e = tok.piece(bad, out); e != errc::invalid_token)
      invalid.fail("piece(%d) returned %s, not invalid_token", static_cast<int>(bad),
                   to_string(e).data());
    else if (out != "keep")
      invalid.fail("piece(%d) changed its output", static_cast<int>(bad));
    const token_id ids[] = {some_valid, bad};
    if (const errc e = tok.decode(ids, out); e != errc::invalid_token)
      invalid.fail("decode of {%d, %d} returned %s, not invalid_token",
                   static_cast<int>(some_valid), static_cast<int>(bad), to_string(e).data());
    else if (out != "keep")
      invalid.fail("decode of {%d, %d} changed its output", static_cast<int>(some_valid),
                   static_cast<int>(bad));
  }
  invalid.record(report, "tokenizer_invalid_token");
  return report;
}

/// check_tokenizer over a braced list of texts.
template <Tokenizer T>
[[nodiscard]] conformance_report check_tokenizer(const T& tok,
                                                 std::initializer_list<std::string_view> texts) {
  return check_tokenizer(tok, std::span<const std::string_view>(texts.begin(), texts.size()));
}

// ---- Many sequences ----------------------------------------------------------------------

/// Options of check_multi_sequence_model.
struct multi_sequence_conformance_options {
  /// Random operations (open, batched append, fork, rewind, close) of the interleaving
  /// check.
  std::size_t steps = 120;
  /// Seed of the operations and of the tokens they append.
  std::uint64_t seed = 1;
  /// Most tokens the checks put in one sequence (keep it below the model's per-sequence
  /// context length).
  std::size_t max_tokens = 40;
  /// Most tokens one batch entry appends.
  std::size_t max_chunk = 4;
  /// Most sequences the checks open at once (0: max_sequences()); `no_free_sequence_
  /// changes_nothing` fills max_sequences() and is not applicable above this many.
  std::size_t max_open = 8;
  /// Tolerance of the comparisons with the lone session (conformance_options::tolerance
  /// says what suits which backend). Logits that must not change are compared exactly.
  conformance_tolerance tolerance{};
  /// `sequence_overflow_changes_nothing` fills one sequence to context_length() - 1
  /// tokens; above this length it is not applicable.
  std::size_t max_context_fill = 4096;
};

namespace detail {

/// The MultiSequenceModel inside what a factory returns (the model, a result<> or a
/// pointer-like object holding one), or null.
template <class R>
auto* conformance_multi_get(R& r) noexcept {
  if constexpr (MultiSequenceModel<R>) {
    return &r;
  } else {
    using inner = decltype(conformance_multi_get(*r));
    return static_cast<bool>(r) ? conformance_multi_get(*r) : static_cast<inner>(nullptr);
  }
}

/// Logits of a lone session fed a token list: one session kept and rewound to the
/// common prefix when it can rewind, else a fresh session per query.
template <class MakeLone>
class conformance_lone {
 public:
  using made = std::invoke_result_t<MakeLone&>;
  using model = typename conformance_session<made>::type;

  explicit conformance_lone(MakeLone& make) : make_(make) {}

  /// The lone logits after `t` (non-empty), or an empty span with `error()` set.
  std::span<const float> after(std::span<const token_id> t) {
    error_ = errc::ok;
    std::size_t common = 0;
    bool reused = false;
    if constexpr (Rewindable<model>) {
      if (session_ != nullptr) {
        while (common < fed_.size() && common < t.size() && fed_[common] == t[common]) ++common;
        if (common == t.size()) --common;  // at least one token must be appended
        reused = session_->rewind(fed_.size() - common) == errc::ok;
      }
    }
    if (!reused) {
      reset();
      holder_.emplace(make_());
      session_ = conformance_session<made>::get(*holder_, error_);
      if (session_ == nullptr) return {};
      common = 0;
    }
    fed_.resize(common);
    if ((error_ = session_->append(t.subspan(common))) != errc::ok) {
      reset();
      return {};
    }
    fed_.assign(t.begin(), t.end());
    return session_->logits();
  }
  [[nodiscard]] errc error() const noexcept { return error_; }

 private:
  void reset() {
    session_ = nullptr;
    holder_.reset();
    fed_.clear();
  }
  MakeLone& make_;
  std::optional<made> holder_;
  model* session_ = nullptr;
  std::vector<token_id> fed_;
  errc error_ = errc::ok;
};

/// What the checks expect of one open sequence: its tokens and, once its logits are
/// valid, a copy of them taken right after the call that last changed it.
struct conformance_expected_seq {
  seq_id id = -1;
  std::vector<token_id> tokens;
  std::vector<float> snapshot;  // empty: logits unspecified (never appended, rewound)
};

/// The state the checks track for a multi-sequence model, and its comparisons.
template <class M, class Lone>
class conformance_multi_state {
 public:
  conformance_multi_state(M& m, Lone& lone, const conformance_tolerance& tol)
      : m_(m), lone_(lone), tol_(tol) {}

  std::vector<conformance_expected_seq>& seqs() noexcept { return seqs_; }
  conformance_expected_seq* find(seq_id s) noexcept {
    for (auto& e : seqs_)
      if (e.id == s) return &e;
    return nullptr;
  }

  /// Records a newly opened (or forked) sequence `s` holding `tokens`.
  conformance_expected_seq& add(seq_id s, std::span<const token_id> tokens) {
    conformance_expected_seq& e = seqs_.emplace_back();
    e.id = s;
    e.tokens.assign(tokens.begin(), tokens.end());
    return e;
  }
  void remove(seq_id s) {
    for (std::size_t i = 0; i < seqs_.size(); ++i)
      if (seqs_[i].id == s) {
        seqs_.erase(seqs_.begin() + static_cast<std::ptrdiff_t>(i));
        return;
      }
  }

  /// Compares `e`'s logits with a lone session fed its tokens and takes a new snapshot.
  bool verify(conformance_recorder& rec, conformance_expected_seq& e, const char* what) {
    if (e.tokens.empty()) {
      e.snapshot.clear();
      return true;
    }
    const std::span<const float> want = lone_.after(e.tokens);
    if (want.empty()) {
      rec.fail("%s: the lone reference session failed (%s)", what, to_string(lone_.error()).data());
      return false;
    }
    const std::span<const float> got = m_.logits(e.id);
    if (!conformance_compare(rec, what, e.tokens.size() - 1, e.tokens, got, want, tol_))
      return false;
    e.snapshot.assign(got.begin(), got.end());
    return true;
  }

  /// Checks every tracked sequence except `changed` (and those after it listed in
  /// `more`): open, the expected size, and logits bit for bit as snapshotted. Also checks
  /// that `closed` (if >= 0) is no longer open.
  bool unchanged(conformance_recorder& rec, const char* what,
                 std::span<const seq_id> changed = {}) {
    for (const conformance_expected_seq& e : seqs_) {
      if (std::find(changed.begin(), changed.end(), e.id) != changed.end()) continue;
      if (!m_.is_open(e.id)) {
        rec.fail("%s: sequence %d is no longer open", what, static_cast<int>(e.id));
        return false;
      }
      if (static_cast<std::size_t>(m_.size(e.id)) != e.tokens.size()) {
        rec.fail("%s: sequence %d has size %zu, expected %zu", what, static_cast<int>(e.id),
                 static_cast<std::size_t>(m_.size(e.id)), e.tokens.size());
        return false;
      }
      if (!e.snapshot.empty() && !conformance_same(m_.logits(e.id), e.snapshot)) {
        rec.fail("%s: the logits of sequence %d changed", what, static_cast<int>(e.id));
        return false;
      }
    }
    return true;
  }

 private:
  M& m_;
  Lone& lone_;
  const conformance_tolerance& tol_;
  std::vector<conformance_expected_seq> seqs_;
};

/// Appends one entry and records a failure when it does not succeed.
template <class M>
bool conformance_append_one(conformance_recorder& rec, M& m, seq_id s, std::span<const token_id> t,
                            const char* what) {
  const seq_tokens one{s, t};
  if (const errc e = m.append(std::span<const seq_tokens>(&one, 1)); e != errc::ok) {
    rec.fail("%s: append of %zu tokens to sequence %d returned %s", what, t.size(),
             static_cast<int>(s), to_string(e).data());
    return false;
  }
  return true;
}

}  // namespace detail

/// Runs the MultiSequenceModel contract (core/multi_sequence.hpp) on models made by
/// `make_fresh_model()` (a fresh model with no open sequence: a MultiSequenceModel by
/// value, a result<> of one, or a pointer-like object holding one), comparing each
/// sequence's logits with a lone session from `make_lone_session()` (as for
/// check_language_model) fed the same tokens. Checks (stable names; docs/batching.md):
/// - `multi_interleaving_equals_lone`: seeded random open, batched append (several
///   sequences, several tokens each), fork, rewind and close; after each operation every
///   changed sequence's logits equal the lone session's (within the tolerance) and every
///   other sequence has its size and, bit for bit, its logits;
/// - `fork_equals_recompute`: a fork holds its parent's tokens and logits; parent and
///   child then grow apart in one batch, each equal to the lone session;
/// - `invalid_sequence_changes_nothing`: close, rewind, fork and append (in a batch with
///   a valid entry first) of a closed or never-opened id give invalid_sequence and change
///   nothing; size() is 0 and logits() empty for such ids;
/// - `bad_batch_changes_nothing`: a batch with an invalid token in its second entry
///   gives invalid_token, one naming a sequence twice invalid_argument, and the first
///   entry is not applied;
/// - `no_free_sequence_changes_nothing` (max_sequences() <= max_open): open and fork
///   with every sequence open give no_free_sequence; after a close, open works again;
/// - `sequence_overflow_changes_nothing` (context_length() <= max_context_fill): a batch
///   that would pass one sequence's context gives context_overflow and changes nothing;
///   the last free slot can still be filled;
/// - `batch_score_equals_lone` (MultiSequenceBatchScoring): one score(batch, scored, rows)
///   over up to three sequences, all rows of the first entry and a random tail of the
///   others: every row, and each sequence's logits after it, equal the lone session's.
/// Never fails itself; a factory that fails is a failed `make_fresh_model` check. The
/// factory is called once per check; every model is gone when it returns.
template <class MakeModel, class MakeLone>
requires std::invocable<MakeModel&> && std::invocable<MakeLone&>
[[nodiscard]] conformance_report check_multi_sequence_model(
    MakeModel&& make_fresh_model, MakeLone&& make_lone_session,
    const multi_sequence_conformance_options& options = {}) {
  using lone_type = detail::conformance_lone<std::remove_reference_t<MakeLone>>;
  conformance_report report;
  lone_type lone(make_lone_session);
  std::uint64_t rng = options.seed;
  auto draw = [&](std::size_t n) {
    return static_cast<std::size_t>(detail::conformance_splitmix(rng) % (n == 0 ? 1 : n));
  };

  auto made = make_fresh_model();
  auto* probe = detail::conformance_multi_get(made);
  if (probe == nullptr) {
    report.add("make_fresh_model", conformance_status::failed, "the factory returned no model");
    return report;
  }
  using model = std::remove_pointer_t<decltype(probe)>;
  const std::size_t vocab = static_cast<std::size_t>(probe->vocab_size());
  const std::size_t max_seq = static_cast<std::size_t>(probe->max_sequences());
  if (vocab == 0 || max_seq < 2) {
    report.add("make_fresh_model", conformance_status::failed,
               "vocab_size() %zu and max_sequences() %zu: the checks need >= 1 and >= 2", vocab,
               max_seq);
    return report;
  }
  const std::size_t open_cap = std::min(
      max_seq, options.max_open == 0 ? max_seq : std::max<std::size_t>(options.max_open, 2));
  using state_type = detail::conformance_multi_state<model, lone_type>;

  {  // multi_interleaving_equals_lone
    detail::conformance_recorder rec;
    auto holder = make_fresh_model();
    model& m = *detail::conformance_multi_get(holder);
    state_type st(m, lone, options.tolerance);
    std::vector<std::vector<token_id>> chunks;
    std::vector<seq_tokens> batch;
    std::vector<seq_id> changed;
    for (std::size_t step = 0; step < options.steps && !rec.failed(); ++step) {
      auto& seqs = st.seqs();
      const std::size_t op = seqs.empty() ? 0 : draw(10);
      char what[96];
      changed.clear();
      if (op == 0 || (op == 1 && seqs.size() < 2)) {  // open
        if (seqs.size() >= open_cap) continue;
        std::snprintf(what, sizeof what, "step %zu, open", step);
        const result<seq_id> s = m.open();
        if (!s) {
          rec.fail("%s returned %s", what, to_string(s.error()).data());
          break;
        }
        if (st.find(*s) != nullptr || m.size(*s) != 0) {
          rec.fail("%s returned sequence %d, already open or not empty", what,
                   static_cast<int>(*s));
          break;
        }
        st.add(*s, {});
        changed.push_back(*s);
      } else if (op <= 5) {  // batched append to a random subset
        std::snprintf(what, sizeof what, "step %zu, batched append", step);
        batch.clear();
        chunks.clear();
        for (auto& e : seqs) {
          if (draw(3) == 0 || e.tokens.size() >= options.max_tokens) continue;
          const std::size_t room = options.max_tokens - e.tokens.size();
          const std::size_t n =
              1 + draw(std::min(room, std::max<std::size_t>(options.max_chunk, 1)));
          std::vector<token_id>& c = chunks.emplace_back();
          for (std::size_t k = 0; k < n; ++k) c.push_back(static_cast<token_id>(draw(vocab)));
          changed.push_back(e.id);
        }
        for (std::size_t k = 0; k < chunks.size(); ++k) batch.push_back({changed[k], chunks[k]});
        if (const errc e = m.append(batch); e != errc::ok) {
          rec.fail("%s of %zu entries returned %s", what, batch.size(), to_string(e).data());
          break;
        }
        for (const seq_tokens& b : batch) {
          auto* e = st.find(b.seq);
          e->tokens.insert(e->tokens.end(), b.tokens.begin(), b.tokens.end());
          if (!st.verify(rec, *e, what)) break;
        }
      } else if (op == 6) {  // fork
        if (seqs.size() >= open_cap) continue;
        const std::size_t i = draw(seqs.size());
        std::snprintf(what, sizeof what, "step %zu, fork of sequence %d", step,
                      static_cast<int>(seqs[i].id));
        const result<seq_id> c = m.fork(seqs[i].id);
        if (!c) {
          rec.fail("%s returned %s", what, to_string(c.error()).data());
          break;
        }
        const std::vector<token_id> parent = seqs[i].tokens;
        const bool parent_valid = !seqs[i].snapshot.empty();
        auto& e = st.add(*c, parent);
        changed.push_back(*c);
        if (static_cast<std::size_t>(m.size(*c)) != parent.size()) {
          rec.fail("%s: the fork has %zu tokens, the parent %zu", what,
                   static_cast<std::size_t>(m.size(*c)), parent.size());
          break;
        }
        if (parent_valid && !st.verify(rec, e, what)) break;
      } else if (op == 7) {  // rewind
        auto& e = seqs[draw(seqs.size())];
        const std::size_t n = draw(e.tokens.size() + 1);
        std::snprintf(what, sizeof what, "step %zu, rewind(%d, %zu)", step, static_cast<int>(e.id),
                      n);
        if (const errc r = m.rewind(e.id, n); r != errc::ok) {
          if (r == errc::rewind_failed) continue;  // allowed; then nothing changed
          rec.fail("%s returned %s", what, to_string(r).data());
          break;
        }
        e.tokens.resize(e.tokens.size() - n);
        if (n > 0) e.snapshot.clear();
        changed.push_back(e.id);
        if (static_cast<std::size_t>(m.size(e.id)) != e.tokens.size()) {
          rec.fail("%s: size() is %zu, expected %zu", what, static_cast<std::size_t>(m.size(e.id)),
                   e.tokens.size());
          break;
        }
      } else {  // close
        const seq_id s = seqs[draw(seqs.size())].id;
        std::snprintf(what, sizeof what, "step %zu, close(%d)", step, static_cast<int>(s));
        if (const errc r = m.close(s); r != errc::ok) {
          rec.fail("%s returned %s", what, to_string(r).data());
          break;
        }
        st.remove(s);
        if (m.is_open(s) || m.size(s) != 0 || !m.logits(s).empty()) {
          rec.fail("%s: the sequence still looks open", what);
          break;
        }
      }
      if (!rec.failed()) st.unchanged(rec, what, changed);
    }
    rec.record(report, "multi_interleaving_equals_lone");
  }

  {  // fork_equals_recompute
    detail::conformance_recorder rec;
    auto holder = make_fresh_model();
    model& m = *detail::conformance_multi_get(holder);
    state_type st(m, lone, options.tolerance);
    const std::size_t prefix =
        std::max<std::size_t>(2, std::min<std::size_t>(8, options.max_tokens / 2));
    std::vector<token_id> base(prefix);
    for (token_id& t : base) t = static_cast<token_id>(draw(vocab));
    const result<seq_id> p = m.open();
    if (!p) {
      rec.fail("open returned %s", to_string(p.error()).data());
    } else if (detail::conformance_append_one(rec, m, *p, base, "fork_equals_recompute")) {
      auto& pe = st.add(*p, base);
      st.verify(rec, pe, "the parent before the fork");
      const result<seq_id> c = m.fork(*p);
      if (!c) {
        rec.fail("fork returned %s", to_string(c.error()).data());
      } else {
        auto& ce = st.add(*c, base);
        if (!detail::conformance_same(m.logits(*c), st.find(*p)->snapshot))
          rec.fail("the fork's logits differ from its parent's");
        st.unchanged(rec, "fork", std::span<const seq_id>(&ce.id, 1));
        const token_id a[2] = {static_cast<token_id>(draw(vocab)),
                               static_cast<token_id>(draw(vocab))};
        const token_id b[1] = {static_cast<token_id>((a[0] + 1) % static_cast<token_id>(vocab))};
        const seq_tokens two[2] = {{*c, b}, {*p, a}};
        if (const errc e = m.append(two); e != errc::ok) {
          rec.fail("a batch over parent and fork returned %s", to_string(e).data());
        } else {
          auto* pp = st.find(*p);
          pp->tokens.insert(pp->tokens.end(), a, a + 2);
          auto* cc = st.find(*c);
          cc->tokens.insert(cc->tokens.end(), b, b + 1);
          st.verify(rec, *pp, "the parent after the batch");
          st.verify(rec, *cc, "the fork after the batch");
          if (!rec.failed() && m.close(*p) != errc::ok) rec.fail("close of the parent failed");
          st.remove(*p);
          st.unchanged(rec, "closing the parent");
          const token_id more[1] = {a[0]};
          if (!rec.failed() &&
              detail::conformance_append_one(rec, m, *c, more, "after the close")) {
            cc = st.find(*c);
            cc->tokens.push_back(a[0]);
            st.verify(rec, *cc, "the fork after its parent closed");
          }
        }
      }
    }
    rec.record(report, "fork_equals_recompute");
  }

  // Two open sequences with some tokens, for the error checks.
  auto setup = [&](model& m, state_type& st, detail::conformance_recorder& rec) -> bool {
    for (std::size_t k = 0; k < 2; ++k) {
      const result<seq_id> s = m.open();
      if (!s) {
        rec.fail("open returned %s", to_string(s.error()).data());
        return false;
      }
      const std::size_t n = 2 + k;
      std::vector<token_id> t(n);
      for (token_id& x : t) x = static_cast<token_id>(draw(vocab));
      if (!detail::conformance_append_one(rec, m, *s, t, "setup")) return false;
      auto& e = st.add(*s, t);
      if (!st.verify(rec, e, "setup")) return false;
    }
    return true;
  };
  auto expect = [&](detail::conformance_recorder& rec, state_type& st, errc got, errc want,
                    const char* what) {
    if (got != want)
      rec.fail("%s returned %s, not %s", what, to_string(got).data(), to_string(want).data());
    else
      st.unchanged(rec, what);
  };

  {  // invalid_sequence_changes_nothing
    detail::conformance_recorder rec;
    auto holder = make_fresh_model();
    model& m = *detail::conformance_multi_get(holder);
    state_type st(m, lone, options.tolerance);
    if (setup(m, st, rec)) {
      const result<seq_id> extra = m.open();
      const seq_id closed = extra ? *extra : seq_id(-1);
      if (extra && m.close(closed) != errc::ok) rec.fail("close of a fresh sequence failed");
      const seq_id bad[] = {closed, -1, static_cast<seq_id>(max_seq), static_cast<seq_id>(1 << 30)};
      const token_id t[1] = {0};
      for (const seq_id s : bad) {
        if (m.is_open(s) || m.size(s) != 0 || !m.logits(s).empty())
          rec.fail("sequence %d, never opened or closed, looks open", static_cast<int>(s));
        expect(rec, st, m.close(s), errc::invalid_sequence, "close of an invalid id");
        expect(rec, st, m.rewind(s, 0), errc::invalid_sequence, "rewind of an invalid id");
        const result<seq_id> f = m.fork(s);
        expect(rec, st, f ? errc::ok : f.error(), errc::invalid_sequence, "fork of an invalid id");
        const seq_tokens b[2] = {{st.seqs()[0].id, t}, {s, t}};
        expect(rec, st, m.append(b), errc::invalid_sequence,
               "a batch whose second entry names an invalid id");
      }
    }
    rec.record(report, "invalid_sequence_changes_nothing");
  }

  {  // bad_batch_changes_nothing
    detail::conformance_recorder rec;
    auto holder = make_fresh_model();
    model& m = *detail::conformance_multi_get(holder);
    state_type st(m, lone, options.tolerance);
    if (setup(m, st, rec)) {
      const seq_id a = st.seqs()[0].id, b = st.seqs()[1].id;
      const token_id good[2] = {0, static_cast<token_id>(vocab - 1)};
      const token_id bad_ids[] = {-1, static_cast<token_id>(vocab), static_cast<token_id>(1 << 30)};
      for (const token_id x : bad_ids) {
        const token_id bad[2] = {0, x};
        const seq_tokens batch[2] = {{a, good}, {b, bad}};
        expect(rec, st, m.append(batch), errc::invalid_token,
               "a batch with an invalid token in its second entry");
      }
      const seq_tokens dup[2] = {{a, good}, {a, good}};
      expect(rec, st, m.append(dup), errc::invalid_argument, "a batch naming a sequence twice");
      const seq_tokens ok_batch[2] = {{b, good}, {a, good}};
      if (!rec.failed() && m.append(ok_batch) != errc::ok)
        rec.fail("after the bad batches, a good one failed");
      for (auto& e : st.seqs()) {
        if (rec.failed()) break;
        e.tokens.insert(e.tokens.end(), good, good + 2);
        st.verify(rec, e, "after the bad batches");
      }
    }
    rec.record(report, "bad_batch_changes_nothing");
  }

  if (max_seq > open_cap) {
    report.add("no_free_sequence_changes_nothing", conformance_status::not_applicable,
               "max_sequences() %zu is above max_open %zu", max_seq, open_cap);
  } else {
    detail::conformance_recorder rec;
    auto holder = make_fresh_model();
    model& m = *detail::conformance_multi_get(holder);
    state_type st(m, lone, options.tolerance);
    if (setup(m, st, rec)) {
      while (st.seqs().size() < max_seq && !rec.failed()) {
        const result<seq_id> s = m.open();
        if (!s)
          rec.fail("open %zu of %zu returned %s", st.seqs().size() + 1, max_seq,
                   to_string(s.error()).data());
        else
          st.add(*s, {});
      }
      if (!rec.failed()) {
        const result<seq_id> o = m.open();
        expect(rec, st, o ? errc::ok : o.error(), errc::no_free_sequence, "open with all open");
        const result<seq_id> f = m.fork(st.seqs()[0].id);
        expect(rec, st, f ? errc::ok : f.error(), errc::no_free_sequence, "fork with all open");
        const seq_id last = st.seqs().back().id;
        if (m.close(last) != errc::ok) rec.fail("close failed");
        st.remove(last);
        const result<seq_id> again = m.open();
        if (!again) rec.fail("open after a close returned %s", to_string(again.error()).data());
      }
    }
    rec.record(report, "no_free_sequence_changes_nothing");
  }

  if constexpr (HasContextLength<model>) {
    const std::size_t ctx = static_cast<std::size_t>(probe->context_length());
    if (ctx > options.max_context_fill || ctx < 3) {
      report.add("sequence_overflow_changes_nothing", conformance_status::not_applicable,
                 "context_length() %zu is outside [3, max_context_fill %zu]", ctx,
                 options.max_context_fill);
    } else {
      detail::conformance_recorder rec;
      auto holder = make_fresh_model();
      model& m = *detail::conformance_multi_get(holder);
      state_type st(m, lone, options.tolerance);
      // The second sequence is a fork of the first taken while it is short: a backend
      // whose sequences share one cache (llama.cpp) then has room for one sequence of
      // context_length() tokens beside it.
      const token_id start[2] = {0, static_cast<token_id>(vocab - 1)};
      const result<seq_id> first = m.open();
      if (!first) rec.fail("open returned %s", to_string(first.error()).data());
      const result<seq_id> second =
          first && detail::conformance_append_one(rec, m, *first, start, "setup")
              ? m.fork(*first)
              : result<seq_id>(errc::invalid_argument);
      if (first && !rec.failed() && !second)
        rec.fail("fork returned %s", to_string(second.error()).data());
      if (!rec.failed()) {
        st.verify(rec, st.add(*first, start), "setup");
        st.verify(rec, st.add(*second, start), "setup");
      }
      if (!rec.failed()) {
        auto& a = st.seqs()[0];
        const seq_id b = st.seqs()[1].id;
        std::vector<token_id> fill(ctx - 1 - a.tokens.size());
        for (token_id& x : fill) x = static_cast<token_id>(draw(vocab));
        if (detail::conformance_append_one(rec, m, a.id, fill, "filling a sequence")) {
          a.tokens.insert(a.tokens.end(), fill.begin(), fill.end());
          st.verify(rec, a, "filling a sequence");
          const token_id two[2] = {1 % static_cast<token_id>(vocab), 0};
          const seq_tokens batch[2] = {{b, std::span<const token_id>(two, 1)}, {a.id, two}};
          expect(rec, st, m.append(batch), errc::context_overflow,
                 "a batch passing one sequence's context");
          if (!rec.failed() &&
              detail::conformance_append_one(rec, m, a.id, std::span<const token_id>(two, 1),
                                             "filling the last free slot")) {
            auto* e = st.find(a.id);
            e->tokens.push_back(two[0]);
            st.verify(rec, *e, "filling the last free slot");
          }
        }
      }
      rec.record(report, "sequence_overflow_changes_nothing");
    }
  } else {
    report.add("sequence_overflow_changes_nothing", conformance_status::not_applicable,
               "the model has no context_length()");
  }

  if constexpr (MultiSequenceBatchScoring<model>) {  // batch_score_equals_lone
    detail::conformance_recorder rec;
    auto holder = make_fresh_model();
    model& m = *detail::conformance_multi_get(holder);
    const std::size_t n = std::min<std::size_t>(open_cap, 3);
    const std::size_t chunk = std::max<std::size_t>(options.max_chunk, 1);
    std::vector<std::vector<token_id>> held(n), added(n);
    std::vector<seq_tokens> batch;
    std::vector<std::size_t> scored(n);
    std::size_t rows_n = 0;
    for (std::size_t k = 0; k < n && !rec.failed(); ++k) {
      const result<seq_id> s = m.open();
      if (!s) {
        rec.fail("open returned %s", to_string(s.error()).data());
        break;
      }
      for (std::size_t j = 1 + draw(chunk); j > 0; --j)
        held[k].push_back(static_cast<token_id>(draw(vocab)));
      for (std::size_t j = 1 + draw(chunk); j > 0; --j)
        added[k].push_back(static_cast<token_id>(draw(vocab)));
      const seq_tokens first{*s, held[k]};
      if (const errc e = m.append(std::span<const seq_tokens>(&first, 1)); e != errc::ok)
        rec.fail("appending %zu tokens returned %s", held[k].size(), to_string(e).data());
      batch.push_back({*s, added[k]});
      scored[k] = k == 0 ? added[k].size() : draw(added[k].size() + 1);
      rows_n += scored[k];
    }
    std::vector<float> rows(rows_n * vocab);
    if (!rec.failed()) {
      if (const errc e = m.score(batch, scored, rows); e != errc::ok)
        rec.fail("score of %zu entries returned %s", batch.size(), to_string(e).data());
    }
    std::size_t at = 0;
    for (std::size_t k = 0; k < batch.size() && !rec.failed(); ++k) {
      std::vector<token_id>& t = held[k];
      const std::size_t head = added[k].size() - scored[k];
      for (std::size_t j = 0; j < added[k].size() && !rec.failed(); ++j) {
        t.push_back(added[k][j]);
        if (j < head) continue;
        const std::span<const float> want = lone.after(t);
        if (want.empty()) {
          rec.fail("the lone session failed with %s", to_string(lone.error()).data());
          break;
        }
        (void)conformance_compare(rec, "score(batch, scored, rows)", t.size() - 1, t,
                                  std::span<const float>(rows.data() + at++ * vocab, vocab), want,
                                  options.tolerance);
      }
      if (rec.failed()) break;
      const std::span<const float> want = lone.after(t);
      if (!want.empty())
        (void)conformance_compare(rec, "logits(s) after score(batch, scored, rows)", t.size() - 1,
                                  t, m.logits(batch[k].seq), want, options.tolerance);
    }
    rec.record(report, "batch_score_equals_lone");
  } else {
    report.add("batch_score_equals_lone", conformance_status::not_applicable,
               "the model has no score(batch, scored, rows)");
  }
  return report;
}

}  // namespace tandem::inline v0
