// tandem: speculative decoding over token trees. A draft model proposes a tree of
// continuations, branching where it is unsure (best-first on the estimated chance that a
// node is accepted, under a node budget and a depth limit, as EAGLE-2, Sequoia and
// SpecInfer do); the target scores the whole tree in one pass (TreeScoring, or a fallback
// of several passes for any Rewindable + Scoring model); verification walks the tree and
// keeps exactly what the target alone would produce: its greedy tokens under greedy
// decoding, its distribution under sampling (multi-draft rejection sampling, recursive and
// without replacement when the children were drawn from the draft). A cost model chooses
// the tree's size, down to a chain or no speculation. docs/speculative.md, "Token trees".
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/core/completion.hpp"
#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/logits.hpp"
#include "tandem/core/rng.hpp"
#include "tandem/core/types.hpp"
#include "tandem/speculative/draft_length.hpp"
#include "tandem/speculative/drafter.hpp"

namespace tandem::inline v0 {

/// Most draft nodes a token tree holds (the target's pass then scores up to one more: the
/// last kept token).
inline constexpr std::size_t max_tree_nodes = 64;
/// Deepest draft tree (the most draft tokens one round can accept).
inline constexpr std::size_t max_tree_depth = 16;
/// Most children a draft node proposes.
inline constexpr std::size_t max_tree_children = 8;

/// The theory of a token tree: the expected number of tokens a verification round keeps,
///   E = 1 + sum over nodes i of prod_{j on the path root..i} a_j,
/// where a_j is the chance that node j is accepted once its parent was (`accept[j]`;
/// parents[j] == -1: a child of the last kept token, else 0 <= parents[j] < j). The 1 is
/// the target's own token (a correction or a bonus). Greedy: a_j is 1 when token j is
/// the target's choice after its path, else 0. Sampling with the draft's top tokens as
/// children (one-hot q): a_j = p(token j | path), the target's probability. A chain with
/// a_j = a is Leviathan et al.'s (1 - a^(g+1)) / (1 - a). Returns 0 for spans of
/// different sizes or a parent out of order.
[[nodiscard]] inline double expected_accepted_tokens(std::span<const std::int32_t> parents,
                                                     std::span<const double> accept) noexcept {
  if (parents.size() != accept.size()) return 0.0;
  if (!detail::is_parents_first(parents)) return 0.0;
  double e = 1.0;
  for (std::size_t i = 0; i < parents.size(); ++i) {
    double r = 1.0;
    for (std::int32_t j = static_cast<std::int32_t>(i); j >= 0;
         j = parents[static_cast<std::size_t>(j)])
      r *= accept[static_cast<std::size_t>(j)];
    e += r;
  }
  return e;
}

/// TreeScoring for any Rewindable + Scoring model, in several passes: score_tree scores
/// each root-to-leaf path with score() (sharing the prefix it holds with the previous
/// path, rewinding the rest) and rewinds to the held tokens; commit_tree appends the
/// chosen path (one more pass). Correct, not fast: a pass per leaf instead of one; meant
/// so that every SpeculativeTarget can run tree speculation, and as the reference that a
/// one-pass backend is tested against. Borrows the model (which must outlive the
/// adapter); forwards LanguageModel, Rewindable, Scoring and the context length to it.
/// Allocation: buffers grow to the largest tree seen, then nothing.
template <class M>
class tree_scoring_adapter {
  static_assert(LanguageModel<M> && Rewindable<M> && Scoring<M>,
                "tree_scoring_adapter: the model must be a LanguageModel with rewind and score");

 public:
  /// An adapter over `model` (borrowed).
  explicit tree_scoring_adapter(M& model) : m_(&model) {}

  /// The model's vocabulary size.
  [[nodiscard]] std::size_t vocab_size() const noexcept {
    return static_cast<std::size_t>(m_->vocab_size());
  }
  /// The model's held tokens (a pending tree is not held).
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(m_->size()); }
  /// The model's context length (SIZE_MAX when it reports none).
  [[nodiscard]] std::size_t context_length() const noexcept { return context_length_of(*m_); }
  /// The model's logits.
  [[nodiscard]] std::span<const float> logits() const noexcept { return m_->logits(); }
  /// The model.
  [[nodiscard]] M& model() noexcept { return *m_; }

  ///@{
  /// The model's append, rewind and score; each first drops a pending tree.
  [[nodiscard]] errc append(std::span<const token_id> t) {
    pending_ = false;
    return m_->append(t);
  }
  [[nodiscard]] errc rewind(std::size_t n) {
    pending_ = false;
    return m_->rewind(n);
  }
  [[nodiscard]] errc score(std::span<const token_id> t, std::span<float> rows) {
    pending_ = false;
    return m_->score(t, rows);
  }
  ///@}

  /// TreeScoring's score_tree (core/concepts.hpp), one score() per leaf. Errors as the
  /// concept's, and the model's score/rewind errors; after an error the model holds its
  /// old tokens again (unless a rewind failed: rewind_failed, and it holds more) and no
  /// tree is pending.
  [[nodiscard]] errc score_tree(std::span<const token_id> tokens,
                                std::span<const std::int32_t> parents, std::span<float> rows) {
    pending_ = false;
    const std::size_t v = vocab_size(), n = tokens.size();
    TANDEM_TRY(detail::check_tree_input(n, parents, rows.size(), v));
    for (const token_id t : tokens)
      if (t < 0 || static_cast<std::size_t>(t) >= v) return errc::invalid_token;
    if (n > context_length() - std::min(context_length(), size())) return errc::context_overflow;
    if (leaf_.size() < n) {
      leaf_.resize(n);
      path_.resize(n);
      held_.resize(n);
      seq_.resize(n);
      buf_.resize(n * v);
    }
    std::fill_n(leaf_.begin(), n, char{1});
    for (std::size_t i = 0; i < n; ++i)
      if (parents[i] >= 0) leaf_[static_cast<std::size_t>(parents[i])] = 0;
    std::size_t held = 0;  // nodes of held_ the model holds beyond its tokens
    errc err = errc::ok;
    for (std::size_t i = 0; i < n && err == errc::ok; ++i) {
      if (!leaf_[i]) continue;
      std::size_t len = 0;  // path root..i, reversed into path_
      for (std::int32_t j = static_cast<std::int32_t>(i); j >= 0;
           j = parents[static_cast<std::size_t>(j)])
        path_[len++] = j;
      std::reverse(path_.begin(), path_.begin() + static_cast<std::ptrdiff_t>(len));
      std::size_t common = 0;
      while (common < held && common < len && held_[common] == path_[common]) ++common;
      if (common == len) --common;  // a leaf is never inside a held path; kept for safety
      if (held > common) {
        if (err = m_->rewind(held - common); err != errc::ok) break;
        held = common;
      }
      const std::size_t k = len - common;
      for (std::size_t j = 0; j < k; ++j)
        seq_[j] = tokens[static_cast<std::size_t>(path_[common + j])];
      err = m_->score(std::span<const token_id>(seq_.data(), k),
                      std::span<float>(buf_.data(), k * v));
      if (err != errc::ok) break;
      for (std::size_t j = 0; j < k; ++j) {
        const auto node = static_cast<std::size_t>(path_[common + j]);
        std::copy_n(buf_.data() + j * v, v, rows.data() + node * v);
        held_[common + j] = path_[common + j];
      }
      held = len;
    }
    if (held > 0) {
      if (const errc e = m_->rewind(held); e != errc::ok) return errc::rewind_failed;
    }
    if (err != errc::ok) return err;
    tok_.assign(tokens.begin(), tokens.end());
    par_.assign(parents.begin(), parents.end());
    pending_ = true;
    return errc::ok;
  }

  /// TreeScoring's commit_tree: appends the path's tokens (one pass). Errors:
  /// invalid_argument (no tree pending, or `path` not a chain of it), the model's append
  /// errors; the tree then stays pending and the model unchanged.
  [[nodiscard]] errc commit_tree(std::span<const std::int32_t> path) {
    if (!pending_ || !detail::is_tree_chain(par_, path)) return errc::invalid_argument;
    for (std::size_t j = 0; j < path.size(); ++j) seq_[j] = tok_[static_cast<std::size_t>(path[j])];
    if (!path.empty()) TANDEM_TRY(m_->append(std::span<const token_id>(seq_.data(), path.size())));
    pending_ = false;
    return errc::ok;
  }

 private:
  M* m_;
  std::vector<char> leaf_;
  std::vector<std::int32_t> path_, held_, par_;
  std::vector<token_id> seq_, tok_;
  std::vector<float> buf_;
  bool pending_ = false;
};

namespace detail {

/// The most nodes `m`'s tree pass takes (its `max_tree_nodes()`, e.g. llama_session's
/// batch_size), or SIZE_MAX when it does not say.
template <class M>
[[nodiscard]] std::size_t tree_pass_limit(const M& m) noexcept {
  if constexpr (requires {
                  { m.max_tree_nodes() } -> std::convertible_to<std::size_t>;
                })
    return static_cast<std::size_t>(m.max_tree_nodes());
  else
    return static_cast<std::size_t>(-1);
}

/// A borrowed TreeScoring model, or a tree_scoring_adapter over a model without it.
template <class M>
class tree_scorer {
 public:
  explicit tree_scorer(M& m) : m_(&m) {}
  [[nodiscard]] M& get() noexcept { return *m_; }

 private:
  M* m_;
};
template <class M>
requires(!TreeScoring<M>) class tree_scorer<M> {
 public:
  explicit tree_scorer(M& m) : a_(m) {}
  [[nodiscard]] tree_scoring_adapter<M>& get() noexcept { return a_; }

 private:
  tree_scoring_adapter<M> a_;
};

/// One step of multi-draft verification at a node, in double precision so that its
/// exactness can be checked by enumeration. `p` is the target's distribution there, `q`
/// the distribution the children were drawn from without replacement (empty: the
/// children are fixed tokens, q one-hot on each in turn). accept_chance is the chance
/// min(1, p(x) / q(x)) of accepting child x; reject_child updates p to the residual
/// norm(max(p - q, 0)) and q to q without x, renormalised (one-hot: p without x,
/// renormalised). A residual of zero mass (rounding only: it needs p <= q everywhere,
/// when x is accepted for sure) leaves p as it was.
[[nodiscard]] inline double accept_chance(std::span<const double> p, std::span<const double> q,
                                          token_id x) noexcept {
  const auto i = static_cast<std::size_t>(x);
  const double qx = q.empty() ? 1.0 : q[i];
  if (!(qx > 0.0)) return 0.0;
  return std::min(1.0, p[i] / qx);
}
/// See accept_chance.
inline void reject_child(std::span<double> p, std::span<double> q, token_id x) noexcept {
  const auto xi = static_cast<std::size_t>(x);
  double z = 0.0;
  if (q.empty()) {
    for (std::size_t j = 0; j < p.size(); ++j) z += j == xi ? 0.0 : p[j];
    if (!(z > 0.0)) return;
    for (std::size_t j = 0; j < p.size(); ++j) p[j] = j == xi ? 0.0 : p[j] / z;
    return;
  }
  for (std::size_t j = 0; j < p.size(); ++j) z += std::max(0.0, p[j] - q[j]);
  if (z > 0.0)
    for (std::size_t j = 0; j < p.size(); ++j) p[j] = std::max(0.0, p[j] - q[j]) / z;
  double zq = 0.0;
  for (std::size_t j = 0; j < q.size(); ++j) zq += j == xi ? 0.0 : q[j];
  for (std::size_t j = 0; j < q.size(); ++j) q[j] = (j == xi || !(zq > 0.0)) ? 0.0 : q[j] / zq;
}
/// A draw from the distribution `p` (sums to about 1) with uniform `u` in [0, 1); the
/// last token of positive mass when rounding runs past the end; -1 when all are zero.
[[nodiscard]] inline token_id draw_from(std::span<const double> p, double u) noexcept {
  double z = 0.0;
  for (double x : p) z += x;
  const double t = u * z;
  double c = 0.0;
  token_id last = -1;
  for (std::size_t j = 0; j < p.size(); ++j) {
    if (!(p[j] > 0.0)) continue;
    c += p[j];
    last = static_cast<token_id>(j);
    if (c > t) return last;
  }
  return last;
}

}  // namespace detail

/// What a tree-size policy plans for the coming round.
struct tree_plan {
  std::size_t max_nodes = 0;     ///< most draft nodes (0: no speculation, one plain target step)
  std::size_t max_depth = 0;     ///< deepest node (1 to max_tree_depth)
  std::size_t max_children = 0;  ///< most children per node (1: a chain)
  std::size_t expand_width = 0;  ///< nodes expanded per depth level (one draft pass per level)
  /// A further level is drafted only while the summed estimated value of the nodes it
  /// would expand exceeds this (the value a level must promise to pay for its draft pass).
  double expand_threshold = 0.0;
  /// Verify a probe tree whatever choose() says: at least the probe_nodes most valuable
  /// nodes (measures acceptance and pass costs while speculation is off or unproven).
  bool force = false;
};

/// What one tree round did, reported to the policy's update(). Per draft node of the
/// verified tree (in tree order): its depth, its rank among its siblings (0: first drawn
/// or most likely), the draft probability its value was estimated from, whether its parent
/// was reached and whether it was accepted. Views into the decoder's buffers, valid during
/// update().
struct tree_round {
  std::size_t nodes = 0;                  ///< draft nodes in the verified tree
  std::size_t levels = 0;                 ///< draft passes that built it
  std::size_t accepted = 0;               ///< draft tokens accepted (the accepted path's length)
  double draft_seconds = 0.0;             ///< time in the draft model this round
  double target_seconds = 0.0;            ///< time in the target's pass
  std::size_t target_batch = 0;           ///< tokens in that pass (nodes + 1)
  bool forced = false;                    ///< the plan forced a probe tree
  std::span<const std::uint8_t> depth{};  ///< per node: its depth (0: under the last kept token)
  std::span<const std::uint8_t> rank{};   ///< per node: its rank among its siblings
  std::span<const std::uint8_t> tried{};  ///< per node: 1 when its parent was reached
  std::span<const std::uint8_t> accepted_node{};  ///< per node: 1 when it was accepted
  std::span<const double> q{};  ///< per node: the draft probability its value was estimated from
  /// Each node's parent among these nodes (-1: a child of the last kept token).
  std::span<const std::int32_t> parents{};
};

/// Chooses token-tree shapes: plan() for the coming round; acceptance(depth, rank, q) the
/// estimated chance that a node is accepted once its parent was, given its slot and the
/// draft probability q of its slot; choose(values, levels): how many of the candidate
/// nodes (their estimated values, the chance of being on the accepted path, in
/// non-increasing order) to verify after `levels` draft passes; update(round) learns.
template <class P>
concept TreeSizePolicy = requires(P& p, const P& cp, const tree_round& r, std::span<const double> v,
                                  std::size_t n, double q) {
  { p.plan() } -> std::convertible_to<tree_plan>;
  { cp.acceptance(n, n, q) } -> std::convertible_to<double>;
  { p.choose(v, n) } -> std::convertible_to<std::size_t>;
  p.update(r);
};

/// A fixed tree shape: the best `nodes` nodes by draft probability within `depth` levels,
/// `children` per node, `width` nodes expanded per level; acceptance taken as the draft's
/// probability. 0 nodes: never speculate.
struct fixed_tree {
  std::size_t nodes = 16;    ///< node budget (0: never speculate; at most max_tree_nodes)
  std::size_t depth = 6;     ///< depth limit (1 to max_tree_depth)
  std::size_t children = 4;  ///< children per node (1 to max_tree_children; 1: a chain)
  std::size_t width = 4;     ///< nodes expanded per level
  /// The shape above.
  [[nodiscard]] tree_plan plan() const noexcept {
    return {std::min(nodes, max_tree_nodes),
            std::clamp<std::size_t>(depth, 1, max_tree_depth),
            std::clamp<std::size_t>(children, 1, max_tree_children),
            std::clamp<std::size_t>(width, 1, max_tree_nodes),
            0.0,
            false};
  }
  /// q: the draft's probability.
  [[nodiscard]] double acceptance(std::size_t, std::size_t, double q) const noexcept { return q; }
  /// Every candidate.
  [[nodiscard]] std::size_t choose(std::span<const double> v, std::size_t) const noexcept {
    return v.size();
  }
  /// Learns nothing.
  void update(const tree_round&) noexcept {}
};

/// Settings of tree_cost_model.
struct tree_cost_options {
  std::size_t max_nodes = 32;    ///< node budget (1 to max_tree_nodes)
  std::size_t max_depth = 8;     ///< depth limit (1 to max_tree_depth)
  std::size_t max_children = 4;  ///< children per node (1 to max_tree_children; 1: chains)
  std::size_t expand_width = 4;  ///< nodes expanded per level (1 to max_tree_nodes)
  /// Pseudo-observations behind a sibling rank's prior acceptance, the draft's q.
  double prior_weight = 0.5;
  double decay = 0.98;              ///< per-round forgetting, in (0, 1]
  double min_gain = 1.05;           ///< speculate only when the predicted speedup exceeds this
  std::size_t probe_interval = 16;  ///< while off, draft a probe tree after this many rounds
  /// Drafting rounds forced at start-up (probe trees), before the estimates decide.
  std::size_t startup_probes = 3;
};

/// Checks tree_cost_model options: invalid_argument for a field out of range (named in
/// `*info` when given); else ok.
[[nodiscard]] inline errc validate(const tree_cost_options& o,
                                   error_info* info = nullptr) noexcept {
  const auto bad = [info](const char* what) {
    return detail::fail(info, errc::invalid_argument, "tree_cost_model: %s", what);
  };
  if (!(o.max_nodes >= 1 && o.max_nodes <= max_tree_nodes)) return bad("max_nodes out of range");
  if (!(o.max_depth >= 1 && o.max_depth <= max_tree_depth)) return bad("max_depth out of range");
  if (!(o.max_children >= 1 && o.max_children <= max_tree_children))
    return bad("max_children out of range");
  if (!(o.expand_width >= 1 && o.expand_width <= max_tree_nodes))
    return bad("expand_width out of range");
  if (!(o.prior_weight > 0.0)) return bad("prior_weight not > 0");
  if (!(o.decay > 0.0 && o.decay <= 1.0)) return bad("decay outside (0, 1]");
  if (o.probe_interval < 1) return bad("probe_interval not >= 1");
  if (std::isnan(o.min_gain)) return bad("min_gain is NaN");
  return errc::ok;
}

/// The tree cost model. Estimates online (decayed counts)
/// - the acceptance a(d, r, q) of a node at depth d, rank r among its siblings and draft
///   probability q, once its parent was reached: the accepted over the tried nodes of rank
///   r whose q fell in q's bin (six bins), shrunk towards the rank's rate over all bins,
///   itself shrunk towards q (prior_weight); times a depth factor, the accepted nodes at
///   depth d over their predicted sum, for first children and for later ones apart. (Not
///   q times a ratio: drafts are right far more often than their q says, and not in
///   proportion to it.)
/// - the target's cost T(b) of a pass over b tokens and the draft's cost d per draft pass,
///   with cost_model_draft's measurement (its table, interpolation, slope and level; one
///   of its "draft tokens" is one draft pass here).
/// A node's value is its estimated chance of lying on the accepted path, the product of a
/// over its path. The drafter grows the tree best-first on value; choose() keeps the n
/// best nodes maximising the predicted speedup
///   S(n) = (1 + sum of the n best values) T(1) / (L d + T(n + 1))
/// over target-only decoding (L draft passes), so a node is kept only while its expected
/// accepted tokens pay for its share of the pass. Speculation is off (no tree; a probe
/// every probe_interval rounds) while the recent rounds' mean best S is at most min_gain.
/// A probe (and each of the startup_probes) is a path of up to 4 levels with second
/// children, at least its 4 most valuable nodes verified. With one child per node the tree
/// is a chain and S is cost_model_draft's formula. Allocates nothing.
class tree_cost_model {
 public:
  /// A cost model with options `o` (out of range: validate() is invalid_argument, and
  /// the decoder refuses it).
  explicit tree_cost_model(tree_cost_options o = {}) noexcept
      : o_(o), cost_(cost_options(o)), valid_(tandem::validate(o) == errc::ok) {
    for (auto& row : acc_) row.fill(0.0);
    for (auto& row : tried_) row.fill(0.0);
  }
  /// invalid_argument when made with options out of range, else ok.
  [[nodiscard]] errc validate() const noexcept {
    return valid_ ? errc::ok : errc::invalid_argument;
  }

  /// The coming round: no speculation at start-up (measures T(1)) and while off, a forced
  /// probe tree every probe_interval rounds while off, else the options' shape.
  [[nodiscard]] tree_plan plan() const noexcept {
    if (!valid_ || rounds_ == 0) return {};
    tree_plan p{o_.max_nodes, o_.max_depth, o_.max_children, o_.expand_width, 0.0, false};
    const double t1 = cost_.target_cost(1);
    if (t1 > 0.0) p.expand_threshold = cost_.draft_cost() / t1;
    const bool startup = probes_done_ < o_.startup_probes;
    if (off_ && until_probe_ > 0 && !startup) return {};
    if (off_ || startup) {
      // A probe is a short path with its second children: the probe_nodes most valuable
      // of them, so a chain where the draft is sure, a branch where it is not. It measures
      // the acceptance along a path, which every tree's value rests on, that of second
      // children (untried, their prior would keep a branch out for good) and a pass of a
      // few tokens. (A probe of the most valuable nodes of a full tree under the prior was
      // a star of the root's children on a draft less sure than right: it accepted at most
      // one token, learned nothing of depth and kept speculation off.)
      p.max_children = std::min<std::size_t>(p.max_children, 2);
      p.expand_width = 1;
      p.max_depth = std::min<std::size_t>(p.max_depth, probe_depth);
      p.force = true;
    }
    return p;
  }

  /// a(d, r, q) (see the class comment).
  [[nodiscard]] double acceptance(std::size_t depth, std::size_t rank, double q) const noexcept {
    const std::size_t d = std::min(depth, max_tree_depth - 1), g = std::min<std::size_t>(rank, 1);
    return std::clamp(
        slot_rate(rank, q) * (depth_acc_[d][g] + bin_weight) / (depth_expect_[d][g] + bin_weight),
        0.0, 1.0);
  }
  /// The n maximising S(n) (class comment) for the candidates' non-increasing values after
  /// `levels` draft passes; 0 when no S(n) exceeds min_gain. Also remembers the best S.
  [[nodiscard]] std::size_t choose(std::span<const double> values, std::size_t levels) noexcept {
    const double t1 = cost_.target_cost(1);
    const double dd = static_cast<double>(levels) * cost_.draft_cost();
    double e = 1.0, best = 1.0;
    std::size_t best_n = 0;
    for (std::size_t n = 1; n <= values.size(); ++n) {
      e += values[n - 1];
      const double s = t1 > 0.0 ? e * t1 / (dd + cost_.target_cost(n + 1)) : e;
      if (s > best) {
        best = s;
        best_n = n;
      }
    }
    best_ = best;
    chose_ = true;
    return best > o_.min_gain ? best_n : 0;
  }

  /// Learns the round's acceptance per slot and its timings; decides whether speculation
  /// stays on.
  void update(const tree_round& r) noexcept {
    if (!valid_) return;
    const double k = o_.decay;
    if (r.nodes > 0) {
      for (auto& row : acc_)
        for (double& x : row) x *= k;
      for (auto& row : tried_)
        for (double& x : row) x *= k;
      for (double& x : rank_acc_) x *= k;
      for (double& x : rank_tried_) x *= k;
      for (auto& row : depth_acc_)
        for (double& x : row) x *= k;
      for (auto& row : depth_expect_)
        for (double& x : row) x *= k;
      for (std::size_t i = 0; i < r.nodes; ++i) {
        if (!r.tried[i]) continue;
        const std::size_t s = std::min<std::size_t>(r.rank[i], max_tree_children - 1);
        const std::size_t b = q_bin(r.q[i]);
        const std::size_t d = std::min<std::size_t>(r.depth[i], max_tree_depth - 1);
        const double hit = r.accepted_node[i] ? 1.0 : 0.0;
        const std::size_t g = std::min<std::size_t>(s, 1);
        depth_expect_[d][g] += slot_rate(s, r.q[i]);
        depth_acc_[d][g] += hit;
        tried_[s][b] += 1.0;
        acc_[s][b] += hit;
        rank_tried_[s] += 1.0;
        rank_acc_[s] += hit;
      }
    }
    draft_round dr{};
    dr.requested = dr.drafted = r.levels;
    dr.accepted = std::min(r.accepted, r.levels);
    dr.draft_seconds = r.draft_seconds;
    dr.target_seconds = r.target_seconds;
    dr.target_batch = r.target_batch;
    cost_.update(dr);
    ++rounds_;
    if (chose_) {  // a drafting round: speculation stays on while it pays
      const bool startup = probes_done_ < o_.startup_probes;
      if (startup) ++probes_done_;
      // On the recent rounds' mean best speedup, not this round's alone: one round whose
      // draft was unsure at the root (no node worth a pass) said little about the next
      // ones, yet turned speculation off for probe_interval rounds.
      // Start-up probes choose on the prior costs; only their acceptance counts.
      if (!startup) {
        gain_sum_ = gain_sum_ * gain_decay + best_;
        gain_w_ = gain_w_ * gain_decay + 1.0;
      }
      off_ = gain_w_ > 0.0 && gain_sum_ / gain_w_ <= o_.min_gain;
      until_probe_ = o_.probe_interval;
      chose_ = false;
    } else if (off_ && until_probe_ > 0) {
      --until_probe_;
    }
  }

  /// The best predicted speedup of the last choose().
  [[nodiscard]] double best_predicted_speedup() const noexcept { return best_; }
  /// The timing estimates (T(b) and the draft pass's cost).
  [[nodiscard]] const cost_model_draft& costs() const noexcept { return cost_; }
  /// True while speculation is off (between probes).
  [[nodiscard]] bool off() const noexcept { return off_; }

 private:
  static cost_model_options cost_options(const tree_cost_options& o) noexcept {
    cost_model_options c{};
    c.max_length = std::clamp<std::size_t>(o.max_nodes, 1, max_draft_length);
    c.decay = o.decay > 0.0 && o.decay <= 1.0 ? o.decay : 0.98;
    return c;
  }

  static constexpr std::size_t probe_depth = 4;  // depth of a probe chain
  static constexpr std::size_t q_bins = 6;       // bins of draft probability
  static constexpr double bin_weight = 2.0;      // pseudo-observations behind a bin's rate
  // The acceptance of a node of sibling rank `rank` and draft probability q, over all
  // depths: the rank's rate shrunk towards q, the rank's rate in q's bin shrunk towards
  // that.
  [[nodiscard]] double slot_rate(std::size_t rank, double q) const noexcept {
    const std::size_t r = std::min(rank, max_tree_children - 1);
    const std::size_t b = q_bin(q);
    const double w = o_.prior_weight;
    const double rank_rate = (rank_acc_[r] + w * q) / (rank_tried_[r] + w);
    return (acc_[r][b] + bin_weight * rank_rate) / (tried_[r][b] + bin_weight);
  }
  // The bin of draft probability q: [0, .05), [.05, .1), [.1, .2), [.2, .4), [.4, .7), [.7, 1].
  [[nodiscard]] static std::size_t q_bin(double q) noexcept {
    constexpr std::array<double, q_bins - 1> edges = {0.05, 0.1, 0.2, 0.4, 0.7};
    std::size_t b = 0;
    while (b < edges.size() && q >= edges[b]) ++b;
    return b;
  }
  static constexpr double gain_decay = 0.7;  // forgetting of the mean best speedup

  tree_cost_options o_;
  cost_model_draft cost_;
  // Per sibling rank and draft-probability bin: accepted and tried nodes (decayed).
  std::array<std::array<double, q_bins>, max_tree_children> acc_{}, tried_{};
  std::array<double, max_tree_children> rank_acc_{}, rank_tried_{};
  // Per depth, for first children and for the others: accepted nodes and their summed
  // slot_rate (decayed). Apart, because a draft that fails at a depth (a text whose hard
  // tokens recur at the same offset from the round's start) may still hold the target's
  // token as its second choice there: that is where a tree pays.
  std::array<std::array<double, 2>, max_tree_depth> depth_acc_{}, depth_expect_{};
  std::size_t rounds_ = 0, until_probe_ = 0, probes_done_ = 0;
  double best_ = 1.0, gain_sum_ = 0.0, gain_w_ = 0.0;
  bool off_ = false, chose_ = false, valid_ = true;
};

static_assert(TreeSizePolicy<fixed_tree>);
static_assert(TreeSizePolicy<tree_cost_model>);

/// Settings of a tree_speculative_decoder.
struct tree_options {
  /// Seed of the decoder's rng: the draws of sampled children and the acceptance tests.
  std::uint64_t seed = 0;
  /// Clock for statistics and the policy, as speculative_options::clock.
  double (*clock)() noexcept = nullptr;
  /// false: a node's children are the draft's most likely tokens, verified as fixed
  /// proposals (exact for any sampler; greedy-exact). true: children are drawn from the
  /// draft's distribution without replacement and verified by recursive rejection
  /// sampling without replacement (better acceptance under sampling at high temperature).
  bool sample_children = false;
  /// Temperature of the draft's distribution q (softmax of its logits / temperature);
  /// must be > 0.
  float draft_temperature = 1.0f;
  /// With sample_children: a node gets the fewest children whose largest draft
  /// probabilities add up to this (at most the plan's max_children), so more where the
  /// draft is unsure; the tree is then grown breadth-first and cut by a stopping rule (the
  /// shape may depend on the draft's distributions only, never on which children were
  /// drawn, or verification would not be exact). In (0, 1].
  float children_mass = 0.9f;
};

/// What a tree_speculative_decoder measured, accumulated until reset_stats().
struct tree_stats {
  std::size_t rounds = 0;           ///< verification rounds (one target tree pass each)
  std::size_t target_calls = 0;     ///< target passes, the prompt's included
  std::size_t draft_calls = 0;      ///< draft passes (feeding the kept tokens, tree levels)
  std::size_t drafting_rounds = 0;  ///< rounds that verified a tree of at least one node
  std::size_t drafted = 0;          ///< draft nodes verified (summed tree sizes)
  std::size_t nodes_scored = 0;     ///< tokens in the target's tree passes (drafted + 1 each)
  std::size_t accepted = 0;         ///< draft tokens accepted
  std::size_t generated = 0;        ///< tokens kept
  std::size_t max_tree = 0;         ///< largest tree verified (draft nodes)
  double target_seconds = 0.0;      ///< time in the target
  double draft_seconds = 0.0;       ///< time in the draft model
  /// accepted_per_round[k]: drafting rounds that accepted k draft tokens.
  std::array<std::size_t, max_tree_depth + 1> accepted_per_round{};

  /// Mean draft nodes per drafting round.
  [[nodiscard]] double mean_tree_size() const noexcept {
    return drafting_rounds == 0
               ? 0.0
               : static_cast<double>(drafted) / static_cast<double>(drafting_rounds);
  }
  /// Mean draft tokens accepted per drafting round.
  [[nodiscard]] double mean_accepted_length() const noexcept {
    return drafting_rounds == 0
               ? 0.0
               : static_cast<double>(accepted) / static_cast<double>(drafting_rounds);
  }
  /// Tokens kept per round.
  [[nodiscard]] double tokens_per_round() const noexcept {
    return rounds == 0 ? 0.0 : static_cast<double>(generated) / static_cast<double>(rounds);
  }
};

/// Speculative decoding over token trees: `Target` is a SpeculativeTarget (its own
/// TreeScoring when it has it, else tree_scoring_adapter's passes), `Draft` a
/// LanguageModel with rewind and score (its TreeScoring, when present, drafts a whole
/// depth level in one pass), `Policy` a TreeSizePolicy (tree_cost_model, fixed_tree).
/// A separate decoder rather than a mode of speculative_decoder: the round (a tree
/// instead of a sequence, a walk instead of a prefix test) and the policy interface
/// differ throughout, and the linear decoder stays as it is (and as light).
/// Each round: the draft is fed the kept tokens; a tree grows best-first from the last
/// kept token, each level the `expand_width` most valuable unexpanded nodes (one draft
/// pass; with a draft that has extend_tree, over the new nodes only), up to the plan's
/// depth, while the level's expected gain passes the plan's threshold and the policy would
/// verify a node worth it after one more pass, and while the last level had a node it
/// would verify; the policy chooses how many of the best nodes to verify; the target
/// scores the last kept
/// token and those nodes in one tree pass; verification walks down from the root (at
/// each node the children in order: accept child x with min(1, p(x)/q(x)), else p <-
/// norm(max(p - q, 0)) and q loses x; a token from the remaining p after all were
/// rejected, or at a leaf); the target commits the accepted path, and a draft with its
/// own TreeScoring the accepted nodes its pending tree holds.
/// Borrows target and draft (which must outlive the decoder and be used by nothing else
/// while it runs: the decoder mirrors the draft's context); owns the policy and buffers
/// (195 rows of vocab_size floats: 65 target rows, 64 draft-pass rows, 65 draft
/// distributions, one more; and two rows of doubles: about 199 float rows in all, 25 MB at
/// a 32k vocabulary; sized at the first generation or by reserve()). A plan's node budget
/// is capped at the target's max_tree_nodes() - 1 and each draft pass at the draft's
/// max_tree_nodes(), for models that report one (llama_session: its batch_size); the
/// plan's max_children and expand_width are clamped to [1, max_tree_children] and
/// [1, max_tree_nodes]. One decoder per thread.
template <class Target, class Draft, class Policy = tree_cost_model>
class tree_speculative_decoder {
  static_assert(LanguageModel<Target> && Rewindable<Target> && Scoring<Target>,
                "tree_speculative_decoder: the target must be a LanguageModel with rewind and "
                "score (a SpeculativeTarget)");
  static_assert(
      LanguageModel<Draft> && Rewindable<Draft> && Scoring<Draft>,
      "tree_speculative_decoder: the draft must be a LanguageModel with rewind and score");
  static_assert(TreeSizePolicy<Policy>,
                "tree_speculative_decoder: Policy must be a TreeSizePolicy");

 public:
  /// A decoder verifying `draft`'s trees with `target` (both borrowed).
  tree_speculative_decoder(Target& target, Draft& draft, Policy policy = Policy{},
                           tree_options options = {})
      : target_(target),
        draft_(draft),
        policy_(std::move(policy)),
        opt_(options),
        rng_(options.seed) {}

  /// Sizes the buffers for sequences of up to `tokens` tokens (prompt plus generated), so
  /// that no generation within them allocates (given non-allocating models). Allocates.
  void reserve(std::size_t tokens) {
    size_buffers(static_cast<std::size_t>(target_.get().vocab_size()));
    history_.reserve(tokens + 1);
    mirror_.reserve(tokens + 1);
  }

  /// Generates after `prompt` as speculative_decoder::generate does (same stop rules,
  /// streaming events, budget, deadline, cancellation and completion record), in tree
  /// rounds (class comment). Greedy `sampler`: the tokens equal target-only greedy
  /// decoding exactly when the target's tree rows equal its one-token rows (mocks, n-gram
  /// models; on llama.cpp they differ by rounding, up to 2e-3 to 4e-3, docs/backends.md,
  /// so a near-tie can flip and the output part from there). Otherwise each token follows the
  /// target's distribution under `sampler` exactly (p from sampler.probabilities, after every kept
  /// token). Errors, also in `out.error`: before the target is touched, context_not_empty,
  /// generate()'s (empty_input, invalid_token, invalid_argument, context_overflow),
  /// vocab_mismatch (draft and target vocabularies differ; details in last_error()),
  /// invalid_argument (a policy made with options out of range, a draft temperature not
  /// > 0), unsupported (an output constraint: tree rounds do not mask by one yet);
  /// mid-run the models' errors, the sampler's, no_candidates. Tokens kept so far stay
  /// in `out`.
  /// State left: the target holds its previous content, the prompt and the kept tokens
  /// but the last (as speculative_decoder); after a target error mid-round, what it held
  /// before that round. The draft holds some prefix of that sequence (resynchronised at
  /// the next call). The sampler has accepted every kept token.
  template <DistributionSampler S, TokenCallback OnToken = no_callback>
  [[nodiscard]] errc generate(S& sampler, std::span<const token_id> prompt,
                              const generation_options& opts, completion& out,
                              OnToken&& on_token = {}) {
    return run(detail::no_tokenizer{}, sampler, prompt, opts, out, on_token);
  }

  /// As above, rendering text with `tokenizer` and honouring `opts.stop_strings`, as the
  /// tokenizer overload of generate() (vocab_mismatch for a tokenizer of another size).
  template <Tokenizer T, DistributionSampler S, TokenCallback OnToken = no_callback>
  [[nodiscard]] errc generate(const T& tokenizer, S& sampler, std::span<const token_id> prompt,
                              const generation_options& opts, completion& out,
                              OnToken&& on_token = {}) {
    return run(tokenizer, sampler, prompt, opts, out, on_token);
  }

  /// Measurements since construction or reset_stats().
  [[nodiscard]] const tree_stats& stats() const noexcept { return stats_; }
  /// Forgets the measurements.
  void reset_stats() noexcept { stats_ = {}; }
  ///@{
  /// The tree-size policy (its learned state persists across generations).
  [[nodiscard]] Policy& policy() noexcept { return policy_; }
  [[nodiscard]] const Policy& policy() const noexcept { return policy_; }
  ///@}
  /// Restarts the rng as if constructed with `seed`.
  void reseed(std::uint64_t seed) noexcept { rng_.reseed(seed); }
  /// Details of the last failed generate() (code ok after a successful one).
  [[nodiscard]] const error_info& last_error() const noexcept { return last_error_; }

 private:
  // A candidate node of the draft tree.
  struct node {
    token_id token = 0;
    std::int32_t parent = -1;  // pool index; -1: a child of the last kept token
    std::uint8_t depth = 0, rank = 0;
    double q = 0.0;            // draft probability of its slot (rank-th largest q at its parent)
    double value = 0.0;        // estimated chance of lying on the accepted path
    std::int32_t row = -1;     // its own draft distribution in qrows_ (expanded nodes), else -1
    std::int32_t sel = -1;     // its index in the target's tree (0 is the last kept token)
    std::int32_t dsel = -1;    // its index in the draft's pending tree (-1: not held)
    std::int32_t dchain = -1;  // its index among the tokens appended to the draft (-1: none)
  };

  static constexpr std::size_t pool_cap = 1 + max_tree_nodes * max_tree_children;
  static constexpr std::size_t probe_nodes = 4;  // nodes of a forced probe tree
  static constexpr std::size_t pass_cap = max_tree_nodes;

  [[nodiscard]] double now() const noexcept {
    if (opt_.clock != nullptr) return opt_.clock();
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  void size_buffers(std::size_t v) {
    if (vocab_ == v) return;
    vocab_ = v;
    rows_.assign((max_tree_nodes + 1) * v, 0.0f);
    drows_.assign(pass_cap * v, 0.0f);
    qrows_.assign((max_tree_nodes + 1) * v, 0.0f);
    pd_.assign(v, 0.0);
    qd_.assign(v, 0.0);
    pf_.assign(v, 0.0f);
    pool_.resize(pool_cap);
    order_.resize(pool_cap);
    values_.resize(pool_cap);
  }

  template <class T, class S, class F>
  errc run(const T& tok, S& sampler, std::span<const token_id> prompt,
           const generation_options& opts, completion& out, F& on_token) {
    last_error_.clear();
    detail::token_emitter<T, F> em(tok, opts, out, on_token);
    auto& target = target_.get();
    const errc e = [&]() -> errc {
      if (target.size() != 0)
        return detail::fail(&last_error_, errc::context_not_empty,
                            "the target already holds %zu tokens",
                            static_cast<std::size_t>(target.size()));
      if (opts.constraint)
        return detail::fail(&last_error_, errc::unsupported,
                            "tree speculation does not take an output constraint");
      const auto vocab = static_cast<std::size_t>(target.vocab_size());
      TANDEM_TRY(em.begin(vocab, prompt, 0, context_length_of(target)));
      if (const auto dv = static_cast<std::size_t>(draft_.get().vocab_size()); dv != vocab)
        return detail::fail(&last_error_, errc::vocab_mismatch,
                            "draft vocabulary %zu, target vocabulary %zu", dv, vocab);
      if (errc pe = detail::validate_of(policy_); pe != errc::ok) return pe;
      if (!(opt_.children_mass > 0.0f && opt_.children_mass <= 1.0f))
        return detail::fail(&last_error_, errc::invalid_argument, "children_mass %g outside (0, 1]",
                            static_cast<double>(opt_.children_mass));
      if (!(opt_.draft_temperature > 0.0f))
        return detail::fail(&last_error_, errc::invalid_argument, "draft_temperature %g not > 0",
                            static_cast<double>(opt_.draft_temperature));
      return errc::ok;
    }();
    if (e != errc::ok) {
      if (!last_error_) last_error_.code = e;
      return em.fail(e);
    }
    errc err = rounds(em, sampler, prompt, opts, out);
    if (err != errc::ok && !last_error_) last_error_.code = err;
    return em.end(err);
  }

  template <class Em, class S>
  errc rounds(Em& em, S& sampler, std::span<const token_id> prompt, const generation_options& opts,
              completion& out) {
    auto& target = target_.get();
    size_buffers(static_cast<std::size_t>(target.vocab_size()));
    history_.clear();
    history_.reserve(prompt.size() + std::min(opts.max_tokens, generate_reserve_limit) + 1);
    history_.insert(history_.end(), prompt.begin(), prompt.end());
    mirror_.reserve(history_.capacity());
    if (prompt.size() > 1) {
      const double t0 = now();
      const errc e = target.append(prompt.first(prompt.size() - 1));
      stats_.target_seconds += now() - t0;
      ++stats_.target_calls;
      TANDEM_TRY(e);
    }
    const std::size_t ctx = context_length_of(target);
    for (;;) {
      if (const finish_reason f = em.budget_finish(); f != finish_reason::none) {
        out.finish = f;
        return errc::ok;
      }
      const auto held = static_cast<std::size_t>(target.size());
      if (held >= ctx) {
        out.finish = finish_reason::context_full;
        return errc::ok;
      }
      tree_plan plan = policy_.plan();
      const std::size_t remaining = opts.max_tokens - out.tokens.size();
      // The target's pass holds the last kept token and the nodes.
      const std::size_t tcap = detail::tree_pass_limit(target);
      plan.max_nodes = std::min(
          {plan.max_nodes, max_tree_nodes, ctx - held - 1, tcap - std::min<std::size_t>(tcap, 1)});
      plan.max_depth = std::min({plan.max_depth, max_tree_depth, remaining - 1});
      // A policy's plan is not trusted with the fixed per-node buffers.
      plan.max_children = std::clamp<std::size_t>(plan.max_children, 1, max_tree_children);
      plan.expand_width = std::clamp<std::size_t>(plan.expand_width, 1, max_tree_nodes);
      tree_round round{};
      round.forced = plan.force;
      used_ = chosen_ = 0;
      if (plan.max_nodes > 0 && plan.max_depth > 0) TANDEM_TRY(draft_tree(plan, round));
      TANDEM_TRY(target_pass(round, out));
      if (out.finish != finish_reason::none) return errc::ok;
      const errc ve = verify(em, sampler, round, out);
      policy_.update(round);
      TANDEM_TRY(ve);
      if (out.finish != finish_reason::none) return errc::ok;
    }
  }

  // Brings the draft to the history (rewinding what it holds beyond the common prefix,
  // feeding the rest in one append; at least the last token, so that its logits are
  // fresh). mirror_ records the draft's tokens; when the draft's size disagrees with it
  // (a tree pass whose undo failed left tokens behind), the draft is rewound entirely and
  // fed the whole history. Errors: the draft's; after a failed rewind mirror_ still
  // records what the draft holds.
  errc sync_draft() {
    auto& d = draft_.get();
    if (static_cast<std::size_t>(d.size()) != mirror_.size()) {
      mirror_.clear();
      if (d.size() > 0) TANDEM_TRY(d.rewind(static_cast<std::size_t>(d.size())));
    }
    std::size_t c = 0;
    while (c < mirror_.size() && c < history_.size() && mirror_[c] == history_[c]) ++c;
    if (c == history_.size()) --c;
    if (mirror_.size() > c) {
      TANDEM_TRY(d.rewind(mirror_.size() - c));
      mirror_.resize(c);
    }
    const std::span<const token_id> feed(history_.data() + c, history_.size() - c);
    ++stats_.draft_calls;
    TANDEM_TRY(d.append(feed));
    mirror_.insert(mirror_.end(), feed.begin(), feed.end());
    return errc::ok;
  }

  // q = softmax(logits / temperature) into qrows_ row `r`.
  void fill_q(std::span<const float> logits, std::size_t r) {
    float* q = qrows_.data() + r * vocab_;
    // At temperature 1, the vectorised kernel (a row per expanded node: the scalar loop in
    // double below cost a tree round several draft passes' worth on an 8k vocabulary); it
    // refuses rows with NaN or +inf, which the loop handles.
    if (opt_.draft_temperature == 1.0f &&
        kernels::softmax(logits, std::span<float>(q, vocab_)) == errc::ok)
      return;
    const double inv = 1.0 / static_cast<double>(opt_.draft_temperature);
    double mx = -INFINITY;
    for (float l : logits) mx = std::max(mx, static_cast<double>(l));
    double z = 0.0;
    for (std::size_t j = 0; j < vocab_; ++j) {
      const double x = std::isfinite(logits[j]) ? std::exp((logits[j] - mx) * inv) : 0.0;
      q[j] = static_cast<float>(x);
      z += x;
    }
    if (z > 0.0)
      for (std::size_t j = 0; j < vocab_; ++j) q[j] = static_cast<float>(q[j] / z);
  }

  // Adds the children slots of `parent` (pool index; -1 for the root, whose q is row 0) to
  // the pool: the draft's most likely tokens, or tokens drawn from q without replacement;
  // each slot's value from the parent's and the policy's acceptance of the slot's rank and
  // the rank-th largest q (with sampled children, never above the previous sibling's).
  void add_children(std::int32_t parent, std::size_t row, std::size_t depth, std::size_t children) {
    const float* q = qrows_.data() + row * vocab_;
    std::array<token_id, max_tree_children> top{};
    std::array<float, max_tree_children> topq{};
    std::size_t k = 0;
    for (std::size_t j = 0; j < vocab_; ++j) {
      const float x = q[j];
      if (!(x > 0.0f)) continue;
      if (k < children)
        ++k;
      else if (!(x > topq[k - 1]))
        continue;
      std::size_t i = k - 1;
      while (i > 0 && topq[i - 1] < x) {
        topq[i] = topq[i - 1];
        top[i] = top[i - 1];
        --i;
      }
      topq[i] = x;
      top[i] = static_cast<token_id>(j);
    }
    if (opt_.sample_children) {
      // As many children as it takes for the top ones to hold children_mass of q (more
      // where the draft is unsure): a function of q alone, as exactness needs.
      double mass = 0.0;
      std::size_t want = 0;
      while (want < k && mass < static_cast<double>(opt_.children_mass))
        mass += static_cast<double>(topq[want++]);
      k = std::max<std::size_t>(want, 1);
      double rest = 0.0;
      for (std::size_t j = 0; j < vocab_; ++j) rest += static_cast<double>(q[j]);
      for (std::size_t i = 0; i < k; ++i) {
        const double t = rng_.uniform() * rest;
        double c = 0.0;
        token_id pick = -1;
        for (std::size_t j = 0; j < vocab_; ++j) {
          const auto tj = static_cast<token_id>(j);
          if (!(q[j] > 0.0f) || std::find(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(i),
                                          tj) != top.begin() + static_cast<std::ptrdiff_t>(i))
            continue;
          c += static_cast<double>(q[j]);
          pick = tj;
          if (c > t) break;
        }
        if (pick < 0) {
          k = i;
          break;
        }
        top[i] = pick;
        rest -= static_cast<double>(q[static_cast<std::size_t>(pick)]);
      }
    }
    const double pv = parent < 0 ? 1.0 : pool_[static_cast<std::size_t>(parent)].value;
    double prev = pv;
    for (std::size_t i = 0; i < k && used_ < pool_cap; ++i) {
      node& n = pool_[used_++];
      n = node{};
      n.token = top[i];
      n.parent = parent;
      n.depth = static_cast<std::uint8_t>(depth);
      n.rank = static_cast<std::uint8_t>(i);
      n.q = static_cast<double>(topq[i]);
      // Fixed children: a later sibling may be worth more than an earlier one (a draft
      // whose first choice keeps failing where its second is right), and the tree may hold
      // it alone. Sampled children keep their order (see bfs_choose).
      n.value = pv * policy_.acceptance(depth, i, n.q);
      if (opt_.sample_children) n.value = std::min(prev, n.value);
      prev = n.value;
    }
  }

  // Grows the draft tree (see the class comment) and chooses its nodes: pool_ entries with
  // sel >= 1 in pool order, chosen_ of them. Errors: the draft's (context_overflow of a
  // level's pass ends the growth instead).
  errc draft_tree(const tree_plan& plan, tree_round& round) {
    auto& d = draft_.get();
    const double t0 = now();
    used_ = 0;
    nrows_ = 1;
    dnodes_ = dchain_ = 0;
    const errc se = sync_draft();
    if (se != errc::ok) {
      stats_.draft_seconds += now() - t0;
      return se;
    }
    fill_q(d.logits(), 0);
    std::size_t levels = 1;
    add_children(-1, 0, 0, plan.max_children);
    std::size_t level_begin = 0;
    for (std::size_t depth = 1; depth < plan.max_depth; ++depth) {
      const std::size_t level_end = used_;
      // The most valuable nodes of the newest level, at most expand_width, that still rank
      // within the node budget.
      // Sampled children: the newest level in breadth-first order, while the pool is within
      // the budget (see bfs_choose); else the most valuable first, within the budget.
      const bool bfs = opt_.sample_children;
      if (bfs && used_ >= plan.max_nodes) break;
      std::size_t m = 0;
      for (std::size_t i = level_begin; i < level_end; ++i)
        order_[m++] = static_cast<std::int32_t>(i);
      const auto by_value = [&](std::int32_t a, std::int32_t b) {
        const node &x = pool_[static_cast<std::size_t>(a)], &y = pool_[static_cast<std::size_t>(b)];
        return x.value > y.value || (x.value == y.value && a < b);
      };
      if (!bfs)
        std::sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(m), by_value);
      const double cutoff = bfs ? 0.0 : budget_value(plan.max_nodes);
      // The pass holds the expanded nodes and their ancestors (marked sel == -2), at most
      // pass_cap of them.
      for (std::size_t i = 0; i < used_; ++i) pool_[i].sel = -1;
      std::size_t w = 0, marked = 0;
      // What a node of the level is expected to add: its chance of being reached times the
      // estimated acceptance of its likelier child at this depth, a first child as sure as
      // the node itself (a draft's confidence runs on) or a second one (whose draft
      // probability is at most the first's and 1 less it). A depth where drafts keep
      // failing is then not drafted only to find that out.
      double promise = 0.0;
      while (w < m && w < plan.expand_width && nrows_ + w <= max_tree_nodes) {
        const node& c = pool_[static_cast<std::size_t>(order_[w])];
        if (!(c.value >= cutoff && c.value > 0.0)) break;
        std::size_t fresh = 0;
        for (std::int32_t j = order_[w]; j >= 0 && pool_[static_cast<std::size_t>(j)].sel != -2;
             j = pool_[static_cast<std::size_t>(j)].parent)
          ++fresh;
        if (marked + fresh > std::min(pass_cap, detail::tree_pass_limit(d))) break;
        for (std::int32_t j = order_[w]; j >= 0 && pool_[static_cast<std::size_t>(j)].sel != -2;
             j = pool_[static_cast<std::size_t>(j)].parent)
          pool_[static_cast<std::size_t>(j)].sel = -2;
        marked += fresh;
        promise +=
            c.value *
            std::max(static_cast<double>(policy_.acceptance(depth, 0, c.q)),
                     static_cast<double>(policy_.acceptance(depth, 1, std::min(c.q, 1.0 - c.q))));
        ++w;
      }
      if (w == 0 || promise <= plan.expand_threshold) break;
      if (!bfs && !plan.force && !level_may_pay(plan.max_nodes, promise, levels)) break;
      // One draft pass: the expanded nodes added to the draft's pending tree when it can
      // (extend_tree: each node decoded once), else the expanded nodes and their ancestors.
      const errc e = draft_level(d, w);
      ++stats_.draft_calls;
      ++levels;
      if (e == errc::context_overflow) break;
      if (e != errc::ok) {
        stats_.draft_seconds += now() - t0;
        return e;
      }
      level_begin = used_;
      for (std::size_t i = 0; i < w; ++i) {
        node& x = pool_[static_cast<std::size_t>(order_[i])];
        x.row = static_cast<std::int32_t>(nrows_);
        fill_q(std::span<const float>(drows_.data() + static_cast<std::size_t>(x.sel) * vocab_,
                                      vocab_),
               nrows_++);
        add_children(order_[i], static_cast<std::size_t>(x.row), depth, plan.max_children);
      }
      if (level_begin == used_) break;
      // A level none of whose nodes the policy would verify ends the growth: a deeper one
      // is worth less still and costs another pass.
      if (!bfs && !plan.force && !level_chosen(plan.max_nodes, level_begin, levels)) break;
    }
    // Choose: the pool in value order (parents and earlier siblings rank first).
    for (std::size_t i = 0; i < used_; ++i) {
      order_[i] = static_cast<std::int32_t>(i);
      pool_[i].sel = -1;
    }
    if (!opt_.sample_children)
      std::sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(used_),
                [&](std::int32_t a, std::int32_t b) {
                  const node &x = pool_[static_cast<std::size_t>(a)],
                             &y = pool_[static_cast<std::size_t>(b)];
                  return x.value > y.value || (x.value == y.value && a < b);
                });
    const std::size_t cand = std::min(used_, plan.max_nodes);
    for (std::size_t i = 0; i < cand; ++i)
      values_[i] = pool_[static_cast<std::size_t>(order_[i])].value;
    std::size_t n = opt_.sample_children
                        ? bfs_choose(cand, levels)
                        : policy_.choose(std::span<const double>(values_.data(), cand), levels);
    if (plan.force) n = std::max(n, std::min(cand, probe_nodes));
    n = std::min(n, cand);
    for (std::size_t i = 0; i < n; ++i) pool_[static_cast<std::size_t>(order_[i])].sel = 0;
    chosen_ = 0;
    for (std::size_t i = 0; i < used_; ++i)
      if (pool_[i].sel == 0) pool_[i].sel = static_cast<std::int32_t>(++chosen_);
    round.levels = levels;
    round.draft_seconds = now() - t0;
    stats_.draft_seconds += round.draft_seconds;
    return errc::ok;
  }

  // The draft pass of a level: the expanded nodes order_[0, w) (marked sel == -2 with
  // their ancestors). Leaves each expanded node's row in drows_ at its sel, and dsel (the
  // node's index in the draft's pending tree) on every node the draft holds. Errors: the
  // draft's.
  template <class D>
  errc draft_level(D& d, std::size_t w) {
    // A chain so far: one node expanded, the child of the last node appended (a child of
    // the last kept token when none was), appended as a linear drafter would (one token,
    // no tree bookkeeping; its accepted part stays in the draft, keep_draft_path).
    if (w == 1 && dnodes_ == 0) {
      node& x = pool_[static_cast<std::size_t>(order_[0])];
      const bool next = x.parent < 0 ? dchain_ == 0
                                     : pool_[static_cast<std::size_t>(x.parent)].dchain ==
                                               static_cast<std::int32_t>(dchain_) - 1 &&
                                           dchain_ > 0;
      if (next) {
        TANDEM_TRY(d.append(std::span<const token_id>(&x.token, 1)));
        const std::span<const float> l = d.logits();
        if (l.size() != vocab_) return errc::decode_failed;
        std::copy(l.begin(), l.end(), drows_.begin());
        x.sel = 0;
        x.dchain = static_cast<std::int32_t>(dchain_++);
        return errc::ok;
      }
    }
    if (dchain_ > 0) {  // a tree from here on: hung after the history, as the draft was
      TANDEM_TRY(d.rewind(dchain_));
      dchain_ = 0;
      for (std::size_t i = 0; i < used_; ++i) pool_[i].dchain = -1;
    }
    if constexpr (requires(std::span<const token_id> t, std::span<const std::int32_t> p,
                           std::span<float> r) {
                    { d.extend_tree(t, p, r) } -> std::same_as<errc>;
                  }) {
      bool held = dnodes_ > 0;  // every expanded node hangs from a node the draft holds
      for (std::size_t i = 0; i < w && held; ++i) {
        const std::int32_t p = pool_[static_cast<std::size_t>(order_[i])].parent;
        held = p >= 0 && pool_[static_cast<std::size_t>(p)].dsel >= 0;
      }
      if (held) {
        for (std::size_t i = 0; i < w; ++i) {
          const node& x = pool_[static_cast<std::size_t>(order_[i])];
          ptok_[i] = x.token;
          ppar_[i] = pool_[static_cast<std::size_t>(x.parent)].dsel;
        }
        const errc e = d.extend_tree(std::span<const token_id>(ptok_.data(), w),
                                     std::span<const std::int32_t>(ppar_.data(), w),
                                     std::span<float>(drows_.data(), w * vocab_));
        if (e == errc::ok) {
          for (std::size_t i = 0; i < w; ++i) {
            node& x = pool_[static_cast<std::size_t>(order_[i])];
            x.sel = static_cast<std::int32_t>(i);
            x.dsel = static_cast<std::int32_t>(dnodes_ + i);
          }
          dnodes_ += w;
          return errc::ok;
        }
        // Refused with the pending tree unchanged (too many nodes or helper ids; a tree the
        // draft scored path by path): the whole tree, as below. Else the draft's error.
        dnodes_ = 0;
        if (e != errc::capacity_exceeded && e != errc::invalid_argument) return e;
      }
    }
    std::size_t n = 0;
    for (std::size_t i = 0; i < used_; ++i) {
      pool_[i].dsel = -1;
      if (pool_[i].sel != -2) continue;
      pool_[i].sel = static_cast<std::int32_t>(n);
      ptok_[n] = pool_[i].token;
      ppar_[n] = pool_[i].parent < 0 ? -1 : pool_[static_cast<std::size_t>(pool_[i].parent)].sel;
      ++n;
    }
    const errc e = d.score_tree(std::span<const token_id>(ptok_.data(), n),
                                std::span<const std::int32_t>(ppar_.data(), n),
                                std::span<float>(drows_.data(), n * vocab_));
    dnodes_ = 0;
    if (e != errc::ok) return e;
    for (std::size_t i = 0; i < used_; ++i) pool_[i].dsel = pool_[i].sel;
    dnodes_ = n;
    return errc::ok;
  }

  // With sampled children, whether a child enters the tree must not depend on its own draw
  // or later ones at its node (recursive rejection sampling without replacement is exact
  // only then). The candidates are in breadth-first order (children after all shallower
  // nodes and after earlier siblings), and node p is kept while the policy's best prefix
  // of the first p + 1 is all of them: a stopping rule that looks only at nodes before it.
  std::size_t bfs_choose(std::size_t cand, std::size_t levels) {
    std::size_t n = 0;
    while (n < cand &&
           policy_.choose(std::span<const double>(values_.data(), n + 1), levels) == n + 1)
      ++n;
    return n;
  }

  // The pool's values, most valuable first, at most `cap` of them, into values_; returns
  // how many.
  std::size_t sorted_values(std::size_t cap) {
    for (std::size_t i = 0; i < used_; ++i) values_[i] = pool_[i].value;
    const std::size_t m = std::min(used_, cap);
    std::partial_sort(values_.begin(), values_.begin() + static_cast<std::ptrdiff_t>(m),
                      values_.begin() + static_cast<std::ptrdiff_t>(used_), std::greater<double>());
    return m;
  }

  // Whether one more draft level can pay for itself: the policy, after one more pass,
  // would verify a node worth the level's whole promise (the summed values of the nodes it
  // expands times their first child's estimated acceptance). A policy that verifies every candidate
  // (fixed_tree) always grows.
  bool level_may_pay(std::size_t max_nodes, double promise, std::size_t levels) {
    if (max_nodes < 2) return false;
    std::size_t m = sorted_values(max_nodes - 1);
    std::size_t at = m;
    while (at > 0 && values_[at - 1] < promise) --at;
    for (std::size_t i = m; i > at; --i) values_[i] = values_[i - 1];
    values_[at] = promise;
    ++m;
    return policy_.choose(std::span<const double>(values_.data(), m), levels + 1) > at;
  }

  // Whether the policy would verify a node of the newest level (pool entries from `begin`)
  // after `levels` passes.
  bool level_chosen(std::size_t max_nodes, std::size_t begin, std::size_t levels) {
    double best_new = 0.0;
    for (std::size_t i = begin; i < used_; ++i) best_new = std::max(best_new, pool_[i].value);
    const std::size_t m = sorted_values(max_nodes);
    const std::size_t n = policy_.choose(std::span<const double>(values_.data(), m), levels);
    return n > 0 && best_new >= values_[n - 1];
  }

  // The value of the max_nodes-th most valuable pool node (0 when fewer): a node below it
  // cannot enter the tree, nor can its children.
  double budget_value(std::size_t max_nodes) {
    if (used_ <= max_nodes) return 0.0;
    for (std::size_t i = 0; i < used_; ++i) values_[i] = pool_[i].value;
    std::nth_element(values_.begin(), values_.begin() + static_cast<std::ptrdiff_t>(max_nodes - 1),
                     values_.begin() + static_cast<std::ptrdiff_t>(used_), std::greater<double>());
    return values_[max_nodes - 1];
  }

  // The target's tree pass: node 0 the last kept token, then the chosen nodes.
  errc target_pass(tree_round& round, completion& out) {
    auto& target = target_.get();
    ttok_[0] = history_.back();
    tpar_[0] = -1;
    std::size_t n = 1;
    for (std::size_t i = 0; i < used_ && n <= chosen_; ++i) {
      const node& x = pool_[i];
      if (x.sel <= 0) continue;
      tnode_[static_cast<std::size_t>(x.sel)] = static_cast<std::int32_t>(i);
      ttok_[n] = x.token;
      tpar_[n] = x.parent < 0 ? 0 : pool_[static_cast<std::size_t>(x.parent)].sel;
      ++n;
    }
    const double t0 = now();
    const errc e = target.score_tree(std::span<const token_id>(ttok_.data(), n),
                                     std::span<const std::int32_t>(tpar_.data(), n),
                                     std::span<float>(rows_.data(), n * vocab_));
    round.target_seconds = now() - t0;
    round.target_batch = n;
    round.nodes = n - 1;
    stats_.target_seconds += round.target_seconds;
    ++stats_.target_calls;
    if (e == errc::context_overflow && n == 1) {
      out.finish = finish_reason::context_full;
      return errc::ok;
    }
    TANDEM_TRY(e);
    ++stats_.rounds;
    stats_.nodes_scored += n;
    if (n > 1) {
      ++stats_.drafting_rounds;
      stats_.drafted += n - 1;
      stats_.max_tree = std::max(stats_.max_tree, n - 1);
    }
    for (std::size_t i = 1; i < n; ++i) {
      const node& x = pool_[static_cast<std::size_t>(tnode_[i])];
      rdepth_[i - 1] = x.depth;
      rrank_[i - 1] = x.rank;
      rq_[i - 1] = x.q;
      rtried_[i - 1] = 0;
      racc_[i - 1] = 0;
      rpar_[i - 1] = tpar_[i] - 1;
    }
    round.depth = std::span<const std::uint8_t>(rdepth_.data(), n - 1);
    round.rank = std::span<const std::uint8_t>(rrank_.data(), n - 1);
    round.tried = std::span<const std::uint8_t>(rtried_.data(), n - 1);
    round.accepted_node = std::span<const std::uint8_t>(racc_.data(), n - 1);
    round.q = std::span<const double>(rq_.data(), n - 1);
    round.parents = std::span<const std::int32_t>(rpar_.data(), n - 1);
    return errc::ok;
  }

  // Walks the target's tree from node 0, keeping accepted tokens and finally one of the
  // target's, then commits the fed path. Errors: the sampler's, no_candidates, keeping a
  // token's, the target's commit.
  template <class Em, class S>
  errc verify(Em& em, S& sampler, tree_round& round, completion& out) {
    const std::size_t n = round.nodes + 1;
    std::size_t cur = 0, fed = 1;
    path_[0] = 0;
    bool own = false;  // the round's last kept token is the target's own (not in the tree)
    errc err = errc::ok;
    for (;;) {
      const std::span<const float> dist(rows_.data() + cur * vocab_, vocab_);
      if (err = sampler.probabilities(dist, std::span<float>(pf_)); err != errc::ok) break;
      for (std::size_t j = 0; j < vocab_; ++j) pd_[j] = static_cast<double>(pf_[j]);
      const bool sampled = opt_.sample_children;
      bool have_q = false;
      std::size_t next = 0;
      for (std::size_t c = cur + 1; c < n; ++c)  // the node is reached: its children are tried
        if (tpar_[c] == static_cast<std::int32_t>(cur)) rtried_[c - 1] = 1;
      for (std::size_t c = cur + 1; c < n; ++c) {
        if (tpar_[c] != static_cast<std::int32_t>(cur)) continue;
        if (sampled && !have_q) {
          const std::int32_t row = cur == 0 ? 0 : pool_[static_cast<std::size_t>(tnode_[cur])].row;
          const float* q = qrows_.data() + static_cast<std::size_t>(row) * vocab_;
          for (std::size_t j = 0; j < vocab_; ++j) qd_[j] = static_cast<double>(q[j]);
          have_q = true;
        }
        const std::span<double> q = sampled ? std::span<double>(qd_) : std::span<double>();
        const double a = detail::accept_chance(pd_, q, ttok_[c]);
        if (a >= 1.0 || rng_.uniform() < a) {
          next = c;
          break;
        }
        detail::reject_child(pd_, q, ttok_[c]);
      }
      if (next == 0) {
        const token_id t = detail::draw_from(pd_, rng_.uniform());
        if (t < 0) {
          err = errc::no_candidates;
          break;
        }
        err = keep(em, sampler, t, dist, out);
        own = err == errc::ok && kept_last_;
        break;
      }
      racc_[next - 1] = 1;
      ++round.accepted;
      ++stats_.accepted;
      err = keep(em, sampler, ttok_[next], dist, out);
      if (err != errc::ok) break;
      if (!kept_last_) break;  // a stop rule ended it before keeping the token
      path_[fed++] = static_cast<std::int32_t>(next);
      cur = next;
      if (out.finish != finish_reason::none) break;
    }
    if (round.nodes > 0) ++stats_.accepted_per_round[std::min(round.accepted, max_tree_depth)];
    // The target holds the history but its last token: the fed path, less its last node
    // unless the last kept token is the target's own.
    const std::size_t commit = own ? fed : fed - 1;
    const double t0 = now();
    const errc ce = target_.get().commit_tree(std::span<const std::int32_t>(path_.data(), commit));
    stats_.target_seconds += now() - t0;
    keep_draft_path(fed);
    if (err != errc::ok) return err;
    return ce;
  }

  // The draft keeps the accepted nodes it holds (a prefix of the kept path, path_[1,
  // fed)), so that the next sync feeds only the rest: as a linear drafter's accepted
  // tokens stay in its cache. An appended chain: the rest is rewound. A pending tree: its
  // accepted nodes committed, only for a draft with its own TreeScoring (the adapter's
  // commit is a pass of its own). Best effort: after a failure, the sync finds the draft's
  // size off mirror_ and feeds it again.
  void keep_draft_path(std::size_t fed) {
    if (const std::size_t chain = std::exchange(dchain_, 0); chain > 0) {
      // The appended chain's accepted prefix stays; the rest is rewound.
      dnodes_ = 0;
      auto& d = draft_.get();
      const std::size_t h = mirror_.size();
      if (static_cast<std::size_t>(d.size()) != h + chain) return;
      std::size_t k = 0;
      while (
          k + 1 < fed && k < chain &&
          pool_[static_cast<std::size_t>(tnode_[static_cast<std::size_t>(path_[k + 1])])].dchain ==
              static_cast<std::int32_t>(k))
        ++k;
      if (h + k > history_.size()) return;
      const double t0 = now();
      const errc e = k < chain ? d.rewind(chain - k) : errc::ok;
      stats_.draft_seconds += now() - t0;
      if (e == errc::ok)
        mirror_.insert(mirror_.end(), history_.begin() + static_cast<std::ptrdiff_t>(h),
                       history_.begin() + static_cast<std::ptrdiff_t>(h + k));
      return;
    }
    if constexpr (TreeScoring<Draft>) {
      const std::size_t pending = std::exchange(dnodes_, 0);
      auto& d = draft_.get();
      if (pending == 0 || static_cast<std::size_t>(d.size()) != mirror_.size()) return;
      std::size_t k = 0;
      for (std::size_t j = 1; j < fed; ++j) {
        const node& x = pool_[static_cast<std::size_t>(tnode_[static_cast<std::size_t>(path_[j])])];
        if (x.dsel < 0) break;
        dpath_[k++] = x.dsel;
      }
      const std::size_t h = mirror_.size();
      if (k == 0 || h + k > history_.size()) return;
      const double t0 = now();
      const errc e = d.commit_tree(std::span<const std::int32_t>(dpath_.data(), k));
      stats_.draft_seconds += now() - t0;
      if (e == errc::ok)
        mirror_.insert(mirror_.end(), history_.begin() + static_cast<std::ptrdiff_t>(h),
                       history_.begin() + static_cast<std::ptrdiff_t>(h + k));
    }
  }

  // Keeps token `t` unless the budget, the deadline or a stop token ends the generation
  // first (kept_last_ says whether it was kept).
  template <class Em, class S>
  errc keep(Em& em, S& sampler, token_id t, std::span<const float> dist, completion& out) {
    kept_last_ = false;
    if (const finish_reason f = em.budget_finish(); f != finish_reason::none) {
      out.finish = f;
      return errc::ok;
    }
    if (em.is_stop_token(t)) {
      out.finish = finish_reason::stop_token;
      return errc::ok;
    }
    const auto k = em.keep(t, dist, sampler);
    if (k.error != errc::ok) return k.error;
    history_.push_back(t);
    ++stats_.generated;
    kept_last_ = true;
    out.finish = k.finish;
    return errc::ok;
  }

  detail::tree_scorer<Target> target_;
  detail::tree_scorer<Draft> draft_;
  Policy policy_;
  tree_options opt_;
  rng rng_;
  tree_stats stats_{};
  error_info last_error_{};
  std::size_t vocab_ = 0, used_ = 0, nrows_ = 0, chosen_ = 0;
  std::size_t dnodes_ = 0;  // nodes of the draft's pending tree this round (0: none)
  std::size_t dchain_ = 0;  // tokens appended to the draft this round (a chain so far)
  bool kept_last_ = false;
  std::vector<token_id> history_, mirror_;
  std::vector<float> rows_, drows_, qrows_, pf_;
  std::vector<double> pd_, qd_, values_;
  std::vector<node> pool_;
  std::vector<std::int32_t> order_;
  std::array<token_id, max_tree_nodes + 1> ttok_{}, ptok_{};
  std::array<std::int32_t, max_tree_nodes + 1> tpar_{}, tnode_{}, ppar_{}, path_{};
  std::array<std::uint8_t, max_tree_nodes> rdepth_{}, rrank_{}, rtried_{}, racc_{};
  std::array<double, max_tree_nodes> rq_{};
  std::array<std::int32_t, max_tree_nodes> rpar_{};
  std::array<std::int32_t, max_tree_depth + 1> dpath_{};
};

}  // namespace tandem::inline v0
