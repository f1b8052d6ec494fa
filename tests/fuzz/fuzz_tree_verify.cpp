// fuzz_tree_verify: the token-tree verifier (tandem/speculative/tree.hpp) on tiny vocabularies.
// 1. Exactness against a brute-force reference: random target and draft rows p, q (vocab 3
//    to 5) and a number of children; the reference enumerates every outcome of one node's
//    verification (children drawn from q without replacement, or fixed tokens) with its
//    exact probability; the emitted token's distribution must equal p.
// 2. Structural invariants of the whole decoder: table models (logits a function of the
//    last token) and a random tree shape from the input; greedy output equals target-only
//    greedy decoding, sampled output has the asked length, tokens in the vocabulary, and
//    the target holds the prompt and the kept tokens but the last.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "speculative/tree_reference.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative/tree.hpp"

namespace {

using tandem::errc;
using tandem::token_id;

struct input {
  const std::uint8_t* d;
  std::size_t n, i = 0;
  std::uint8_t next() { return i < n ? d[i++] : static_cast<std::uint8_t>(i++ * 37 + 11); }
};

void require(bool ok) {
  if (!ok) std::abort();
}

// A model whose next-token logits depend on the last token only, with rewind and score.
class table_model {
 public:
  table_model(std::size_t vocab, std::vector<float> table) : v_(vocab), table_(std::move(table)) {
    ctx_.reserve(256);
    logits_.assign(vocab, 0.0f);
  }
  std::size_t vocab_size() const noexcept { return v_; }
  std::size_t size() const noexcept { return ctx_.size(); }
  std::size_t context_length() const noexcept { return 200; }
  std::span<const float> logits() const noexcept { return logits_; }
  errc append(std::span<const token_id> t) {
    if (t.empty()) return errc::empty_input;
    for (token_id x : t)
      if (x < 0 || static_cast<std::size_t>(x) >= v_) return errc::invalid_token;
    if (t.size() > 200 - ctx_.size()) return errc::context_overflow;
    ctx_.insert(ctx_.end(), t.begin(), t.end());
    row(ctx_.back(), logits_);
    return errc::ok;
  }
  errc rewind(std::size_t k) {
    if (k > ctx_.size()) return errc::rewind_out_of_range;
    ctx_.resize(ctx_.size() - k);
    return errc::ok;
  }
  errc score(std::span<const token_id> t, std::span<float> rows) {
    if (rows.size() != t.size() * v_) return errc::size_mismatch;
    TANDEM_TRY(append(t));
    for (std::size_t i = 0; i < t.size(); ++i) row(t[i], rows.subspan(i * v_, v_));
    return errc::ok;
  }

 private:
  void row(token_id last, std::span<float> out) const {
    for (std::size_t j = 0; j < v_; ++j) out[j] = table_[static_cast<std::size_t>(last) * v_ + j];
  }
  std::size_t v_;
  std::vector<float> table_;
  std::vector<token_id> ctx_;
  std::vector<float> logits_;
};

std::vector<double> distribution(input& in, std::size_t v) {
  std::vector<double> p(v);
  double z = 0;
  for (double& x : p) {
    const std::uint8_t b = in.next();
    x = b < 32 ? 0.0 : static_cast<double>(b) / 255.0;
    z += x;
  }
  if (!(z > 0.0)) p[0] = z = 1.0;
  for (double& x : p) x /= z;
  return p;
}

void check_node(input& in) {
  const std::size_t v = 3 + in.next() % 3;
  const std::vector<double> p = distribution(in, v), q = distribution(in, v);
  const std::size_t k = 1 + in.next() % v;
  std::vector<double> out(v, 0.0);
  tandem_test::sampled_outcomes(out, p, q, k, 1.0);
  require(tandem_test::max_difference(out, p) < 1e-9);
  std::vector<token_id> children;
  for (std::size_t j = 0; j < v; ++j)
    if (in.next() % 2 == 0) children.push_back(static_cast<token_id>(j));
  require(tandem_test::max_difference(tandem_test::fixed_outcomes(p, children), p) < 1e-9);
}

void check_decoder(input& in) {
  const std::size_t v = 3 + in.next() % 3;
  std::vector<float> tt(v * v), dt(v * v);
  for (float& x : tt) x = static_cast<float>(in.next() % 16) * 0.5f;
  for (float& x : dt) x = static_cast<float>(in.next() % 16) * 0.5f;
  const tandem::fixed_tree shape{1u + in.next() % 20u, 1u + in.next() % 6u, 1u + in.next() % 4u,
                                 1u + in.next() % 4u};
  const bool sampled = in.next() % 2 == 0;
  const std::size_t n = 1 + in.next() % 24;
  const std::vector<token_id> prompt = {static_cast<token_id>(in.next() % v)};
  tandem::generation_options g;
  g.max_tokens = n;
  // Greedy: exactly the target's greedy output.
  {
    table_model ref(v, tt);
    tandem::sampler_chain s0(0);
    require(s0.add(tandem::sampling::greedy{}) == errc::ok);
    tandem::completion want;
    require(tandem::generate(ref, s0, prompt, g, want) == errc::ok);
    table_model target(v, tt), draft(v, dt);
    tandem::tree_speculative_decoder dec(
        target, draft, shape, tandem::tree_options{.seed = in.next(), .sample_children = sampled});
    tandem::sampler_chain s(0);
    require(s.add(tandem::sampling::greedy{}) == errc::ok);
    tandem::completion c;
    require(dec.generate(s, prompt, g, c) == errc::ok);
    require(c.tokens == want.tokens);
    require(target.size() == prompt.size() + c.tokens.size() - 1);
    require(dec.stats().generated == c.tokens.size());
  }
  // Sampling: the asked length, tokens in the vocabulary, the target's state.
  {
    table_model target(v, tt), draft(v, dt);
    tandem::tree_speculative_decoder dec(
        target, draft, shape, tandem::tree_options{.seed = in.next(), .sample_children = sampled});
    tandem::sampler_chain s(in.next());
    require(s.add(tandem::sampling::temperature{1.5f}) == errc::ok);
    require(s.add(tandem::sampling::dist{}) == errc::ok);
    tandem::completion c;
    require(dec.generate(s, prompt, g, c) == errc::ok);
    require(c.tokens.size() == n);
    for (token_id t : c.tokens) require(t >= 0 && static_cast<std::size_t>(t) < v);
    require(target.size() == prompt.size() + n - 1);
    require(dec.stats().accepted <= dec.stats().drafted);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input in{data, size};
  check_node(in);
  check_decoder(in);
  return 0;
}
