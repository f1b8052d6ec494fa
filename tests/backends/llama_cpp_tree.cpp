// Tests of llama_session's token trees (score_tree / commit_tree: tree attention with
// per-token sequence ids in one llama_decode) against plain sessions fed each path, on a
// tiny random-weight llama model written at test time.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "common/counting_new.hpp"
#include "common/scratch_dir.hpp"
#include "common/tiny_gguf.hpp"
#include "tandem/backends/llama_cpp.hpp"
#include "tandem/core/generate.hpp"
#include "tandem/core/sampler.hpp"
#include "tandem/speculative/tree.hpp"
#include "tandem/testing/conformance.hpp"

namespace {

using tandem::errc;
using tandem::token_id;

// The shared tiny model: 64-wide, 2 layers, built-in vocabulary, seed 11.
const tandem::llama_model_handle& tree_model() {
  static tandem_test::scratch_dir dir("tandem-llama-tree-test-");
  static tandem::llama_model_handle model = [] {
    tandem::llama_quiet_logs(false);  // the error cases make llama.cpp log on purpose
    tandem::tools::tiny_llama_config cfg;
    cfg.seed = 11;
    return tandem_test::load_tiny_gguf(dir.path(), "tree.gguf", cfg);
  }();
  return model;
}

// One thread: deterministic reductions. Flash attention off: llama.cpp's CPU flash
// attention accumulates in f16, so its result depends on the order of the cells, and a
// committed path leaves its cells between freed ones (see the flash-attention case).
tandem::llama_session_options tree_options(std::uint32_t leaves, std::uint32_t context = 512,
                                           std::uint32_t batch = 64, std::int32_t flash = 0) {
  tandem::llama_session_options o;
  o.context_size = context;
  o.batch_size = batch;
  o.threads = 1;
  o.tree_leaves = leaves;
  o.flash_attention = flash;
  return o;
}

tandem::llama_session open_session(std::uint32_t leaves, std::uint32_t context = 512,
                                   std::uint32_t batch = 64, std::int32_t flash = 0) {
  auto s = tandem::llama_session::create(tree_model(), tree_options(leaves, context, batch, flash));
  REQUIRE(s.has_value());
  return std::move(*s);
}

// The tolerance of rows against a plain session: the conformance suite's default (1e-3
// absolute, 1e-3 relative) with 2e-3 absolute, because once a commit has freed the cells
// between a path's cells, later tokens land in the gaps and llama.cpp's f16 K/V products
// round differently than over contiguous cells: on this model by up to 1.2e-3 at a logit
// of 0.16, just past the default (measured over these tests). A wrong mask moves logits
// by 1 or more.
constexpr tandem::conformance_tolerance tree_tol{2e-3f, 1e-3f};

// Whether `got` matches `want` within `tol`.
bool rows_match(std::span<const float> got, std::span<const float> want,
                const tandem::conformance_tolerance& tol = tree_tol) {
  if (got.size() != want.size() || got.empty()) return false;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!tandem::detail::conformance_close(got[i], want[i], tol)) return false;
  return true;
}

// The tokens of the path root..node of a tree.
std::vector<token_id> path_tokens(std::span<const token_id> tokens,
                                  std::span<const std::int32_t> parents, std::int32_t node) {
  std::vector<token_id> out;
  for (std::int32_t u = node; u >= 0; u = parents[static_cast<std::size_t>(u)])
    out.push_back(tokens[static_cast<std::size_t>(u)]);
  std::reverse(out.begin(), out.end());
  return out;
}

// The node indices of the path root..node.
std::vector<std::int32_t> path_nodes(std::span<const std::int32_t> parents, std::int32_t node) {
  std::vector<std::int32_t> out;
  for (std::int32_t u = node; u >= 0; u = parents[static_cast<std::size_t>(u)]) out.push_back(u);
  std::reverse(out.begin(), out.end());
  return out;
}

// Checks every row of a scored tree against `ref` (a session holding the same tokens):
// row i must equal ref's last score row over the path root..i; ref is rewound after.
void check_rows(tandem::llama_session& ref, std::span<const token_id> tokens,
                std::span<const std::int32_t> parents, std::span<const float> rows) {
  const std::size_t v = ref.vocab_size();
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const auto p = path_tokens(tokens, parents, static_cast<std::int32_t>(i));
    std::vector<float> want(p.size() * v);
    REQUIRE(ref.score(p, want) == errc::ok);
    INFO("node " << i << " at depth " << p.size());
    CHECK(rows_match(rows.subspan(i * v, v), std::span<const float>(want).last(v)));
    REQUIRE(ref.rewind(p.size()) == errc::ok);
  }
}

// True when the session's cache holds exactly its tokens under id 0 and nothing under a
// helper id.
bool cache_is_clean(const tandem::llama_session& s) {
  llama_memory_t mem = llama_get_memory(s.get());
  if (llama_memory_seq_pos_max(mem, 0) != static_cast<llama_pos>(s.size()) - 1) return false;
  for (std::size_t id = 1; id <= s.max_tree_leaves(); ++id)
    if (llama_memory_seq_pos_max(mem, static_cast<llama_seq_id>(id)) != -1) return false;
  return true;
}

// Appends `more` to `s` and to a fresh plain session fed `held` first; their logits must
// match, and `s` must hold no cells but its own.
void check_continues_like_fresh(tandem::llama_session& s, std::span<const token_id> held,
                                std::span<const token_id> more) {
  REQUIRE(s.append(more) == errc::ok);
  CHECK(cache_is_clean(s));
  auto fresh = open_session(0);
  REQUIRE(fresh.append(held) == errc::ok);
  REQUIRE(fresh.append(more) == errc::ok);
  CHECK(s.size() == fresh.size());
  CHECK(rows_match(s.logits(), fresh.logits()));
}

const std::vector<token_id> held_prompt = {1, 300, 301, 302, 7, 120, 200, 259, 42};

// A tree of 9 nodes and 5 leaves: two roots, branching at depths 1 and 2.
//   0 (310) -> 1 (311) -> 2 (312) -> 3 (313)
//                      -> 4 (314)
//           -> 5 (315)
//   6 (316) -> 7 (317)
//           -> 8 (318)
const std::vector<token_id> tree_tokens = {310, 311, 312, 313, 314, 315, 316, 317, 318};
const std::vector<std::int32_t> tree_parents = {-1, 0, 1, 2, 1, 0, -1, 6, 6};

}  // namespace

TEST_CASE("llama_cpp tree: every row of score_tree equals the logits after its path",
          "[backends][llama_cpp][tree]") {
  // 8 leaves: the tree's 5 leaves fit, one decode; 4: scored path by path.
  const std::uint32_t leaves = GENERATE(8u, 4u);
  INFO("tree_leaves " << leaves);
  auto s = open_session(leaves);
  auto ref = open_session(0);
  const std::size_t v = s.vocab_size();
  std::vector<float> rows(tree_tokens.size() * v);
  SECTION("on an empty session") {
    REQUIRE(s.score_tree(tree_tokens, tree_parents, rows) == errc::ok);
    CHECK(s.size() == 0);
    check_rows(ref, tree_tokens, tree_parents, rows);
  }
  SECTION("after held tokens, whose logits stay") {
    REQUIRE(s.append(held_prompt) == errc::ok);
    REQUIRE(ref.append(held_prompt) == errc::ok);
    const std::vector<float> before(s.logits().begin(), s.logits().end());
    REQUIRE(s.score_tree(tree_tokens, tree_parents, rows) == errc::ok);
    CHECK(s.size() == held_prompt.size());
    CHECK(std::equal(before.begin(), before.end(), s.logits().begin(), s.logits().end()));
    CHECK(cache_is_clean(s) == (leaves < 5));  // path by path: no helper ids hold cells
    check_rows(ref, tree_tokens, tree_parents, rows);
    // Siblings differ: the tree is not scoring one chain.
    CHECK_FALSE(rows_match(std::span<const float>(rows).subspan(2 * v, v),
                           std::span<const float>(rows).subspan(4 * v, v)));
  }
}

TEST_CASE("llama_cpp tree: commit_tree then append equals a lone session fed the same tokens",
          "[backends][llama_cpp][tree]") {
  const std::size_t v = tree_model().vocab_size();
  std::vector<float> rows(tree_tokens.size() * v);
  const std::vector<token_id> more = {50, 51};
  const std::uint32_t leaves = GENERATE(8u, 4u);  // one decode, path by path
  for (const std::int32_t end : {3, 4, 5, 8, 0}) {
    auto s = open_session(leaves);
    REQUIRE(s.append(held_prompt) == errc::ok);
    REQUIRE(s.score_tree(tree_tokens, tree_parents, rows) == errc::ok);
    const auto nodes = path_nodes(tree_parents, end);
    REQUIRE(s.commit_tree(nodes) == errc::ok);
    INFO("path to node " << end << ", tree_leaves " << leaves);
    CHECK(s.size() == held_prompt.size() + nodes.size());
    CHECK(rows_match(s.logits(),
                     std::span<const float>(rows).subspan(static_cast<std::size_t>(end) * v, v)));
    std::vector<token_id> held = held_prompt;
    for (const std::int32_t u : nodes) held.push_back(tree_tokens[static_cast<std::size_t>(u)]);
    REQUIRE(s.size() == held.size());
    check_continues_like_fresh(s, held, more);
  }
}

TEST_CASE("llama_cpp tree: an empty path, or any other mutating call, drops the pending tree",
          "[backends][llama_cpp][tree]") {
  auto s = open_session(8);
  std::vector<float> rows(tree_tokens.size() * s.vocab_size());
  REQUIRE(s.append(held_prompt) == errc::ok);
  const std::vector<float> before(s.logits().begin(), s.logits().end());
  const std::vector<token_id> more = {60, 61, 62};
  SECTION("commit_tree({}) restores the state before score_tree") {
    REQUIRE(s.score_tree(tree_tokens, tree_parents, rows) == errc::ok);
    REQUIRE(s.commit_tree({}) == errc::ok);
    CHECK(s.size() == held_prompt.size());
    CHECK(std::equal(before.begin(), before.end(), s.logits().begin(), s.logits().end()));
    CHECK(s.commit_tree({}) == errc::invalid_argument);  // nothing pending any more
    check_continues_like_fresh(s, held_prompt, more);
  }
  SECTION("append") {
    REQUIRE(s.score_tree(tree_tokens, tree_parents, rows) == errc::ok);
    check_continues_like_fresh(s, held_prompt, more);
    CHECK(s.commit_tree({}) == errc::invalid_argument);
  }
  SECTION("rewind") {
    REQUIRE(s.score_tree(tree_tokens, tree_parents, rows) == errc::ok);
    REQUIRE(s.rewind(2) == errc::ok);
    check_continues_like_fresh(s, std::span(held_prompt).first(held_prompt.size() - 2), more);
  }
  SECTION("a second score_tree") {
    REQUIRE(s.score_tree(tree_tokens, tree_parents, rows) == errc::ok);
    const std::vector<token_id> two = {70, 71};
    const std::vector<std::int32_t> chain = {-1, 0};
    std::vector<float> rows2(2 * s.vocab_size());
    REQUIRE(s.score_tree(two, chain, rows2) == errc::ok);
    const std::vector<std::int32_t> both = {0, 1};
    REQUIRE(s.commit_tree(both) == errc::ok);
    std::vector<token_id> held = held_prompt;
    held.insert(held.end(), two.begin(), two.end());
    check_continues_like_fresh(s, held, more);
  }
}

TEST_CASE("llama_cpp tree: score_tree errors leave the session as before, with no stray cells",
          "[backends][llama_cpp][tree]") {
  auto s = open_session(4, 32, 16);
  const std::size_t v = s.vocab_size();
  REQUIRE(s.append(held_prompt) == errc::ok);
  std::vector<token_id> held = held_prompt;
  std::vector<float> before(s.logits().begin(), s.logits().end());
  const std::vector<token_id> three = {310, 311, 312};
  const std::vector<std::int32_t> fan = {-1, 0, 0};
  std::vector<float> rows(3 * v);
  // A pending tree, so that each failing call also shows it drops one first.
  const auto pend = [&] { REQUIRE(s.score_tree(three, fan, rows) == errc::ok); };

  pend();
  CHECK(s.score_tree(three, std::span(fan).first(2), rows) == errc::size_mismatch);
  CHECK(s.score_tree(three, fan, std::span(rows).first(2 * v)) == errc::size_mismatch);
  CHECK(s.last_error().code == errc::size_mismatch);
  CHECK(s.commit_tree({}) == errc::invalid_argument);
  CHECK(s.score_tree({}, {}, {}) == errc::empty_input);
  pend();
  const std::vector<std::int32_t> self_parent = {-1, 1, 0};
  CHECK(s.score_tree(three, self_parent, rows) == errc::invalid_argument);
  const std::vector<std::int32_t> below_root = {-2, 0, 0};
  CHECK(s.score_tree(three, below_root, rows) == errc::invalid_argument);
  pend();
  const std::vector<token_id> bad = {310, static_cast<token_id>(v), 312};
  CHECK(s.score_tree(bad, fan, rows) == errc::invalid_token);
  const std::vector<token_id> minus = {310, -1, 312};
  CHECK(s.score_tree(minus, fan, rows) == errc::invalid_token);
  CHECK(cache_is_clean(s));

  SECTION("context_overflow") {
    const std::vector<token_id> fill(s.context_length() - s.size() - 2, 5);
    REQUIRE(s.append(fill) == errc::ok);  // three nodes after context_length() - 2 do not fit
    held.insert(held.end(), fill.begin(), fill.end());
    before.assign(s.logits().begin(), s.logits().end());
    CHECK(s.score_tree(three, fan, rows) == errc::context_overflow);
    CHECK(cache_is_clean(s));
  }
  SECTION("capacity_exceeded: more nodes than batch_size") {
    pend();
    CHECK(s.max_tree_nodes() == 16);
    const std::vector<token_id> long_chain(17, 320);
    std::vector<std::int32_t> chain(17);
    for (std::size_t i = 0; i < chain.size(); ++i) chain[i] = static_cast<std::int32_t>(i) - 1;
    std::vector<float> rows17(17 * v);
    CHECK(s.score_tree(long_chain, chain, rows17) == errc::capacity_exceeded);
    CHECK(s.last_error().code == errc::capacity_exceeded);
  }
  SECTION("tree_leaves over 255 is refused at create") {
    const auto made = tandem::llama_session::create(tree_model(), tree_options(256, 32));
    REQUIRE_FALSE(made.has_value());
    CHECK(made.error() == errc::invalid_argument);
  }
  SECTION("tree_leaves not below batch_size is refused at create (llama.cpp would abort)") {
    const auto made = tandem::llama_session::create(tree_model(), tree_options(16, 512, 16));
    REQUIRE_FALSE(made.has_value());
    CHECK(made.error() == errc::invalid_argument);
    CHECK(tandem::llama_session::create(tree_model(), tree_options(15, 512, 16)).has_value());
  }
  CHECK(s.size() == held.size());
  CHECK(std::equal(before.begin(), before.end(), s.logits().begin(), s.logits().end()));
  check_continues_like_fresh(s, held, std::span(three).first(2));
}

TEST_CASE("llama_cpp tree: a cancelled score_tree removes every cell it wrote",
          "[backends][llama_cpp][tree]") {
  bool abort_now = false;
  tandem::llama_session_options o = tree_options(4, 64, 16);
  o.abort_callback = [](void* flag) { return *static_cast<bool*>(flag); };
  o.abort_data = &abort_now;
  auto made = tandem::llama_session::create(tree_model(), o);
  REQUIRE(made.has_value());
  auto& s = *made;
  REQUIRE(s.append(held_prompt) == errc::ok);
  const std::vector<float> before(s.logits().begin(), s.logits().end());
  std::vector<float> rows(tree_tokens.size() * s.vocab_size());
  abort_now = true;
  const std::vector<std::int32_t> chain = {-1, 0, 1, 2, 3, 4, 5, 6, 7};
  CHECK(s.score_tree(tree_tokens, chain, rows) == errc::cancelled);
  CHECK(s.commit_tree({}) == errc::invalid_argument);
  CHECK(s.score_tree(tree_tokens, tree_parents, rows) == errc::cancelled);  // 5 leaves: by paths
  CHECK(s.commit_tree({}) == errc::invalid_argument);
  CHECK(s.size() == held_prompt.size());
  CHECK(std::equal(before.begin(), before.end(), s.logits().begin(), s.logits().end()));
  abort_now = false;
  check_continues_like_fresh(s, held_prompt, std::span(tree_tokens).first(3));
}

TEST_CASE("llama_cpp tree: commit_tree refuses a path that is not a chain of the pending tree",
          "[backends][llama_cpp][tree]") {
  auto s = open_session(8);
  std::vector<float> rows(tree_tokens.size() * s.vocab_size());
  REQUIRE(s.append(held_prompt) == errc::ok);
  const std::vector<std::int32_t> none = {0};
  CHECK(s.commit_tree(none) == errc::invalid_argument);  // nothing pending
  REQUIRE(s.score_tree(tree_tokens, tree_parents, rows) == errc::ok);
  const std::vector<std::vector<std::int32_t>> bad = {
      {1},              // not a root
      {0, 2},           // 2 is a grandchild of 0
      {0, 1, 2, 3, 4},  // 4 is not a child of 3
      {6, 1},           // 1 is not a child of 6
      {0, 9},           // out of range
      {-1},             // out of range
  };
  for (const auto& p : bad) {
    INFO("path of " << p.size() << " nodes starting at " << p[0]);
    CHECK(s.commit_tree(p) == errc::invalid_argument);
    CHECK(s.size() == held_prompt.size());
  }
  // Still pending: a good path commits.
  const std::vector<std::int32_t> good = {6, 8};
  REQUIRE(s.commit_tree(good) == errc::ok);
  std::vector<token_id> held = held_prompt;
  held.push_back(316);
  held.push_back(318);
  check_continues_like_fresh(s, held, std::span(tree_tokens).first(2));
}

namespace {
// 24 rounds of a random tree (up to 10 nodes, up to 6 leaves) scored and a random path
// of it committed, on a session with `leaves` tree leaves, each checked against a plain
// session fed the same tokens.
void check_random_rounds(std::uint32_t leaves, std::uint32_t seed) {
  auto s = open_session(leaves);
  auto ref = open_session(0);
  constexpr std::size_t most_leaves = 6;
  const std::size_t v = s.vocab_size();
  std::mt19937 rng(seed);
  std::vector<token_id> held = held_prompt;
  REQUIRE(s.append(held) == errc::ok);
  REQUIRE(ref.append(held) == errc::ok);
  std::size_t committed = 0, scored_by_paths = 0;
  for (int round = 0; round < 24; ++round) {
    INFO("round " << round);
    // A random tree: each node hangs under a random earlier node or is a root; nodes
    // that would make a seventh leaf become a chain under the last node instead.
    const std::size_t n = 1 + rng() % 10;
    std::vector<token_id> tokens(n);
    std::vector<std::int32_t> parents(n);
    std::vector<bool> has_child(n, false);
    std::size_t tree_leaves = 0;
    for (std::size_t i = 0; i < n; ++i) {
      tokens[i] = static_cast<token_id>(rng() % v);
      auto p = static_cast<std::int32_t>(rng() % (i + 1)) - 1;
      const bool adds_leaf = p < 0 || has_child[static_cast<std::size_t>(p)];
      if (adds_leaf && tree_leaves == most_leaves) p = static_cast<std::int32_t>(i) - 1;
      parents[i] = p;
      if (p < 0 || has_child[static_cast<std::size_t>(p)]) ++tree_leaves;
      if (p >= 0) has_child[static_cast<std::size_t>(p)] = true;
    }
    std::vector<float> rows(n * v);
    REQUIRE(s.score_tree(tokens, parents, rows) == errc::ok);
    // One decode (cells under helper ids) exactly when the tree's leaves fit.
    CHECK(cache_is_clean(s) == (tree_leaves > leaves));
    scored_by_paths += tree_leaves > leaves ? 1 : 0;
    check_rows(ref, tokens, parents, rows);
    // Keep the path to a random node, or nothing one round in five.
    std::vector<std::int32_t> path;
    if (rng() % 5 != 0) path = path_nodes(parents, static_cast<std::int32_t>(rng() % n));
    REQUIRE(s.commit_tree(path) == errc::ok);
    for (const std::int32_t u : path) held.push_back(tokens[static_cast<std::size_t>(u)]);
    committed += path.size();
    REQUIRE(s.size() == held.size());
    REQUIRE(cache_is_clean(s));
    const token_id next = static_cast<token_id>(rng() % v);
    held.push_back(next);
    if (!path.empty()) {
      const auto kept = std::span(held).last(path.size() + 1).first(path.size());
      REQUIRE(ref.append(kept) == errc::ok);
      CHECK(rows_match(s.logits(), ref.logits()));
    }
    REQUIRE(s.append(std::span(&next, 1)) == errc::ok);
    REQUIRE(ref.append(std::span(&next, 1)) == errc::ok);
    CHECK(rows_match(s.logits(), ref.logits()));
  }
  CHECK(committed > 0);
  if (leaves == 0) CHECK(scored_by_paths == 24);
  if (leaves >= most_leaves) CHECK(scored_by_paths == 0);
}
}  // namespace

TEST_CASE("llama_cpp tree: random score and commit rounds keep matching a plain session",
          "[backends][llama_cpp][tree]") {
  SECTION("every tree in one decode") { check_random_rounds(6, 2024); }
  SECTION("trees of more than 2 leaves path by path") { check_random_rounds(2, 7); }
  SECTION("without tree leaves, every tree path by path") { check_random_rounds(0, 99); }
}

TEST_CASE("llama_cpp tree: warm score and commit rounds allocate the same every round",
          "[backends][llama_cpp][tree]") {
  // llama_decode allocates inside llama.cpp on every call (and the memory calls may, in
  // its per-sequence position maps), so a round cannot count zero; what tandem adds is
  // shown constant: eight warm rounds allocate exactly eight times one round.
  auto s = open_session(8);
  std::vector<float> rows(tree_tokens.size() * s.vocab_size());
  REQUIRE(s.append(held_prompt) == errc::ok);
  const std::vector<std::int32_t> keep = {0, 1, 2};
  const auto round = [&] {
    REQUIRE(s.score_tree(tree_tokens, tree_parents, rows) == errc::ok);
    REQUIRE(s.commit_tree(keep) == errc::ok);
    REQUIRE(s.rewind(keep.size()) == errc::ok);
  };
  round();
  round();
  tandem_test::allocation_scope scope;
  round();
  const std::size_t one = scope.allocations();
  scope.restart();
  for (int i = 0; i < 8; ++i) round();
  CHECK(scope.allocations() == 8 * one);
  WARN("allocations per warm score_tree + commit_tree + rewind round (llama.cpp's): " << one);
}

TEST_CASE("llama_cpp tree: with flash attention on, a committed path continues within f16 rounding",
          "[backends][llama_cpp][tree]") {
  // llama.cpp's CPU flash attention accumulates in f16 in the order of the cache cells;
  // a committed path sits between freed cells, so the next tokens land out of position
  // order: on this model the logits then differ from a lone session's by up to about
  // 4e-3 (1e-3 is the suite's default), which is why the other cases turn it off.
  const tandem::conformance_tolerance f16{1e-2f, 1e-2f};
  auto s = open_session(8, 512, 64, 1);
  std::vector<float> rows(tree_tokens.size() * s.vocab_size());
  REQUIRE(s.append(held_prompt) == errc::ok);
  REQUIRE(s.score_tree(tree_tokens, tree_parents, rows) == errc::ok);
  const std::vector<std::int32_t> keep = {6, 8};
  REQUIRE(s.commit_tree(keep) == errc::ok);
  std::vector<token_id> held = held_prompt;
  held.push_back(316);
  held.push_back(318);
  const std::vector<token_id> more = {50, 51, 52};
  REQUIRE(s.append(more) == errc::ok);
  auto fresh = open_session(0, 512, 64, 1);
  REQUIRE(fresh.append(held) == errc::ok);
  REQUIRE(fresh.append(more) == errc::ok);
  CHECK(rows_match(s.logits(), fresh.logits(), f16));
  CHECK(cache_is_clean(s));
}

TEST_CASE("llama_cpp tree: tree speculation over llama sessions gives the target's greedy output",
          "[backends][llama_cpp][tree]") {
  // The draft: another tiny model of the same vocabulary, so that some nodes are
  // rejected. Both sessions have tree_leaves 8 (the target verifies a tree, the draft
  // scores a level, in one decode when the leaves fit) or 0 (every tree path by path).
  static tandem_test::scratch_dir dir("tandem-llama-tree-draft-");
  tandem::tools::tiny_llama_config cfg;
  cfg.seed = 12;
  const auto draft_model = tandem_test::load_tiny_gguf(dir.path(), "draft.gguf", cfg);
  const std::vector<token_id> prompt = {1, 300, 301, 302, 7};
  tandem::generation_options g;
  g.max_tokens = 40;
  tandem::sampler_chain greedy(0);
  REQUIRE(greedy.add(tandem::sampling::greedy{}) == errc::ok);
  auto lone = open_session(0);
  tandem::completion want;
  REQUIRE(tandem::generate(lone, greedy, prompt, g, want) == errc::ok);
  REQUIRE(want.tokens.size() == g.max_tokens);
  for (const std::uint32_t leaves : {8u, 0u}) {
    for (const tandem::fixed_tree shape :
         {tandem::fixed_tree{6, 3, 2, 2}, tandem::fixed_tree{12, 4, 3, 3}}) {
      INFO("tree_leaves " << leaves << ", " << shape.nodes << " nodes");
      auto target = open_session(leaves);
      auto made = tandem::llama_session::create(draft_model, tree_options(leaves));
      REQUIRE(made.has_value());
      tandem::tree_speculative_decoder dec(target, *made, shape);
      tandem::sampler_chain s(0);
      REQUIRE(s.add(tandem::sampling::greedy{}) == errc::ok);
      tandem::completion c;
      REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
      CHECK(c.tokens == want.tokens);
      CHECK(dec.stats().drafted > dec.stats().accepted);  // some nodes were rejected
      CHECK(cache_is_clean(target));
    }
  }
  SECTION("a tree plan larger than the sessions' batch_size is cut to fit") {
    // Target batch 16 (so at most 15 nodes under the last kept token), draft batch 8; the
    // plan asks for 24 nodes, 4 wide: whole trees and draft levels would be refused.
    // (batch_size stays above tree_leaves: llama.cpp reserves n_seq_max output rows.)
    auto target = open_session(8, 512, 16);
    auto made = tandem::llama_session::create(draft_model, tree_options(4, 512, 8));
    REQUIRE(made.has_value());
    REQUIRE(target.max_tree_nodes() == 16);
    tandem::tree_speculative_decoder dec(target, *made, tandem::fixed_tree{24, 6, 4, 4});
    tandem::sampler_chain s(0);
    REQUIRE(s.add(tandem::sampling::greedy{}) == errc::ok);
    tandem::completion c;
    REQUIRE(dec.generate(s, prompt, g, c) == errc::ok);
    CHECK(c.tokens == want.tokens);
    CHECK(dec.stats().max_tree <= 15);
    CHECK(dec.stats().max_tree > 4);
    CHECK(cache_is_clean(target));
  }
}

TEST_CASE("llama_cpp tree: a tree grown by extend_tree scores and commits as one scored whole",
          "[backends][llama_cpp][tree]") {
  // The tree above in three calls: its roots' first levels, then two levels added.
  const std::size_t v = tree_model().vocab_size();
  auto s = open_session(8);
  auto ref = open_session(0);
  REQUIRE(s.append(held_prompt) == errc::ok);
  REQUIRE(ref.append(held_prompt) == errc::ok);
  const std::vector<token_id> t0 = {310, 311, 316}, t1 = {312, 314, 315, 317, 318}, t2 = {313};
  // Indices: 0 (310), 1 (311), 2 (316); then 3 (312) and 4 (314) under 1, 5 (315) under 0,
  // 6 (317) and 7 (318) under 2; then 8 (313) under 3.
  const std::vector<std::int32_t> p0 = {-1, 0, -1}, p1 = {1, 1, 0, 2, 2}, p2 = {3};
  std::vector<float> r0(t0.size() * v), r1(t1.size() * v), r2(t2.size() * v);
  REQUIRE(s.score_tree(t0, p0, r0) == errc::ok);
  REQUIRE(s.extend_tree(t1, p1, r1) == errc::ok);
  REQUIRE(s.extend_tree(t2, p2, r2) == errc::ok);
  CHECK(s.size() == held_prompt.size());
  // Each new row equals the logits after its path, as score_tree's rows do.
  const std::vector<token_id> all = {310, 311, 316, 312, 314, 315, 317, 318, 313};
  const std::vector<std::int32_t> parents = {-1, 0, -1, 1, 1, 0, 2, 2, 3};
  std::vector<float> rows(all.size() * v);
  std::copy(r0.begin(), r0.end(), rows.begin());
  std::copy(r1.begin(), r1.end(), rows.begin() + static_cast<std::ptrdiff_t>(3 * v));
  std::copy(r2.begin(), r2.end(), rows.begin() + static_cast<std::ptrdiff_t>(8 * v));
  check_rows(ref, all, parents, rows);
  // Parents out of order and helper ids beyond tree_leaves are refused, the tree kept.
  CHECK(s.extend_tree(std::vector<token_id>{5}, std::vector<std::int32_t>{9},
                      std::span<float>(r2)) == errc::invalid_argument);
  const std::vector<token_id> many(8, 5);
  const std::vector<std::int32_t> under(8, 8);
  std::vector<float> rm(many.size() * v);
  CHECK(s.extend_tree(many, under, rm) == errc::capacity_exceeded);
  // The path 0, 1, 3, 8 (tokens 310 311 312 313), its last node from the last call: the
  // session holds it, with that node's row as logits, and continues as a fresh session.
  const std::vector<std::int32_t> path = {0, 1, 3, 8};
  REQUIRE(s.commit_tree(path) == errc::ok);
  CHECK(rows_match(s.logits(), r2));
  std::vector<token_id> held = held_prompt;
  held.insert(held.end(), {310, 311, 312, 313});
  check_continues_like_fresh(s, held, std::vector<token_id>{50, 51});
  // A path ending at a node of an earlier call: held, without logits until the next append.
  auto u = open_session(8);
  REQUIRE(u.append(held_prompt) == errc::ok);
  REQUIRE(u.score_tree(t0, p0, r0) == errc::ok);
  REQUIRE(u.extend_tree(t1, p1, r1) == errc::ok);
  REQUIRE(u.commit_tree(std::vector<std::int32_t>{2}) == errc::ok);
  CHECK(u.size() == held_prompt.size() + 1);
  CHECK(u.logits().empty());
  std::vector<token_id> held2 = held_prompt;
  held2.push_back(316);
  check_continues_like_fresh(u, held2, std::vector<token_id>{50, 51});
  // Without a tree scored in one pass (none pending, or scored path by path): refused.
  auto w = open_session(2);
  CHECK(w.extend_tree(t2, std::vector<std::int32_t>{-1}, r2) == errc::invalid_argument);
  REQUIRE(w.score_tree(all, parents, rows) == errc::ok);  // 5 leaves > 2: path by path
  CHECK(w.extend_tree(t2, std::vector<std::int32_t>{8}, r2) == errc::invalid_argument);
}
