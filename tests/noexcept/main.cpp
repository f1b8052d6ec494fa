// Built with -fno-exceptions -fno-rtti (see CMakeLists.txt): the core templates,
// instantiated with a tiny table model, compile, link and behave without exceptions or
// RTTI. Exits non-zero, naming the failed check, when a behaviour differs.
#include <tandem/tandem.hpp>

#include <array>
#include <cstddef>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

static_assert(TANDEM_HAS_EXCEPTIONS == 0, "tandem_noexcept must be built without exceptions");
#if defined(__GXX_RTTI) || defined(__cpp_rtti) || defined(_CPPRTTI)
#error "tandem_noexcept must be built without RTTI"
#endif

namespace {

using tandem::errc;
using tandem::token_id;

constexpr std::size_t vocab = 3;

// Next-token logits depend only on the last token: 0 -> 1 -> 2 -> 0 under greedy.
constexpr std::array<std::array<float, vocab>, vocab> table{{
    {0.0f, 2.0f, 1.0f},
    {1.0f, 0.0f, 2.0f},
    {2.0f, 1.0f, 0.0f},
}};

class table_model {
 public:
  table_model() { tokens_.reserve(context_length()); }
  std::size_t vocab_size() const noexcept { return vocab; }
  std::size_t size() const noexcept { return tokens_.size(); }
  std::size_t context_length() const noexcept { return 8; }
  errc append(std::span<const token_id> t) {
    for (token_id id : t)
      if (id < 0 || static_cast<std::size_t>(id) >= vocab) return errc::invalid_token;
    if (tokens_.size() + t.size() > context_length()) return errc::context_overflow;
    tokens_.insert(tokens_.end(), t.begin(), t.end());
    return errc::ok;
  }
  std::span<const float> logits() const noexcept {
    return table[static_cast<std::size_t>(tokens_.back())];
  }
  errc rewind(std::size_t n) {
    if (n > tokens_.size()) return errc::rewind_out_of_range;
    tokens_.resize(tokens_.size() - n);
    return errc::ok;
  }
  errc score(std::span<const token_id> t, std::span<float> rows) {
    if (rows.size() != t.size() * vocab) return errc::size_mismatch;
    TANDEM_TRY(append(t));
    for (std::size_t i = 0; i < t.size(); ++i) {
      const auto& row = table[static_cast<std::size_t>(t[i])];
      for (std::size_t j = 0; j < vocab; ++j) rows[i * vocab + j] = row[j];
    }
    return errc::ok;
  }

 private:
  std::vector<token_id> tokens_;
};

struct argmax_sampler {
  tandem::result<token_id> sample(std::span<const float> logits) {
    if (logits.empty()) return errc::empty_input;
    std::size_t best = 0;
    for (std::size_t i = 1; i < logits.size(); ++i)
      if (logits[i] > logits[best]) best = i;
    return static_cast<token_id>(best);
  }
  void accept(token_id t) { last = t; }
  void reset() { last = -1; }
  token_id last = -1;
};

struct letter_tokenizer {
  std::size_t vocab_size() const { return vocab; }
  errc encode(std::string_view text, std::vector<token_id>& ids) const {
    const std::size_t before = ids.size();
    for (char c : text) {
      if (c < 'a' || c >= static_cast<char>('a' + vocab)) {
        ids.resize(before);
        return errc::invalid_argument;
      }
      ids.push_back(c - 'a');
    }
    return errc::ok;
  }
  errc decode(std::span<const token_id> ids, std::string& out) const {
    for (token_id id : ids)
      if (id < 0 || static_cast<std::size_t>(id) >= vocab) return errc::invalid_token;
    for (token_id id : ids) out.push_back(static_cast<char>('a' + id));
    return errc::ok;
  }
  errc piece(token_id id, std::string& out) const {
    return decode(std::span<const token_id>(&id, 1), out);
  }
};

// A text-level generator over the model, tokenizer and sampler above.
struct table_generator {
  tandem::result<tandem::completion> generate(const tandem::generate_request& req) {
    table_model model;
    argmax_sampler sampler;
    letter_tokenizer tok;
    std::vector<token_id> prompt;
    TANDEM_TRY(tok.encode(req.prompt, prompt));
    if (prompt.empty()) return errc::empty_input;
    TANDEM_TRY(model.append(prompt));
    tandem::completion out;
    out.prompt_tokens = prompt.size();
    for (std::size_t i = 0; i < req.options.max_tokens; ++i) {
      tandem::result<token_id> next = sampler.sample(model.logits());
      if (!next) return next.error();
      sampler.accept(*next);
      out.tokens.push_back(*next);
      TANDEM_TRY(tok.piece(*next, out.text));
      const tandem::token_event event{*next, i, {}, 0.0f, 0.0f};
      if (req.on_token && (*req.on_token)(event) == tandem::control::stop) {
        out.finish = tandem::finish_reason::cancelled;
        return out;
      }
      if (tandem::errc e = model.append(std::span<const token_id>(&*next, 1)); e != errc::ok) {
        out.finish = tandem::finish_reason::context_full;
        return out;
      }
    }
    out.finish = tandem::finish_reason::length;
    return out;
  }
};

static_assert(tandem::LanguageModel<table_model>);
static_assert(tandem::can_rewind_v<table_model> && tandem::can_score_v<table_model>);
static_assert(tandem::has_context_length_v<table_model>);
static_assert(tandem::Sampler<argmax_sampler>);
static_assert(tandem::Tokenizer<letter_tokenizer>);
static_assert(tandem::Generator<table_generator>);

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tandem_noexcept: FAILED: %s\n", what);
    ++failures;
  }
}

errc score_then_rewind(table_model& m) {
  const std::array<token_id, 2> t{1, 2};
  std::array<float, 2 * vocab> rows{};
  TANDEM_TRY(m.score(t, rows));
  return m.rewind(t.size());
}

}  // namespace

int main() {
  // result<T>: values, errors, moves.
  tandem::result<std::vector<float>> v(std::in_place, 3, 0.5f);
  check(v.has_value() && v->size() == 3, "result holds a vector value");
  tandem::result<std::vector<float>> moved = std::move(v);
  check(moved && (*moved)[2] == 0.5f, "result moves its value");
  tandem::result<int> e = errc::invalid_token;
  check(!e && e.error() == errc::invalid_token && e.value_or(7) == 7, "result holds an error");
  check(tandem::to_string(errc::context_overflow) == "context_overflow", "errc names itself");

  // The model through its capabilities.
  table_model m;
  const std::array<token_id, 1> bad{3};
  check(m.append(bad) == errc::invalid_token && m.size() == 0,
        "append rejects an id outside the vocab");
  const std::array<token_id, 1> zero{0};
  check(m.append(zero) == errc::ok && m.size() == 1, "append feeds a token");
  check(score_then_rewind(m) == errc::ok && m.size() == 1, "score then rewind restores the size");
  check(m.rewind(2) == errc::rewind_out_of_range, "rewind past the start is an error");
  check(tandem::context_length_of(m) == 8, "context length is detected");

  // The generation loop with tandem's own samplers.
  tandem::result<tandem::sampler_chain> chain =
      tandem::make_sampler(tandem::sampling_options{}, vocab);
  check(chain.has_value(), "make_sampler builds a greedy chain");
  if (chain) {
    table_model fresh;
    tandem::generation_options opts;
    opts.max_tokens = 4;
    tandem::completion out;
    const errc ge = tandem::generate(fresh, *chain, zero, opts, out);
    check(ge == errc::ok && out.tokens == std::vector<token_id>{1, 2, 0, 1} &&
              out.finish == tandem::finish_reason::length,
          "generate follows the table greedily for max_tokens tokens");
  }

  // Text level, with a streaming callback that stops after three tokens.
  table_generator g;
  std::size_t seen = 0;
  auto stop_after_three = [&seen](const tandem::token_event&) {
    return ++seen == 3 ? tandem::control::stop : tandem::control::proceed;
  };
  tandem::generate_request req;
  req.prompt = "a";
  req.on_token = tandem::token_callback(stop_after_three);
  tandem::result<tandem::completion> c = g.generate(req);
  check(c && c->text == "bca" && c->finish == tandem::finish_reason::cancelled,
        "greedy generation follows the table and stops when asked");
  req.prompt = "z";
  check(g.generate(req).error() == errc::invalid_argument, "an unknown letter is an error");

  // The explicit RNG is deterministic.
  tandem::rng r1(42), r2(42);
  bool same = true;
  for (int i = 0; i < 16; ++i) same = same && r1() == r2();
  check(same, "equal seeds give equal streams");
  check(r1.below(10) < 10 && r1.uniform() < 1.0, "rng stays in range");

  if (failures == 0) std::puts("tandem_noexcept: all checks passed");
  return failures == 0 ? 0 : 1;
}
