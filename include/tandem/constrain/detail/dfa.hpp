// tandem (private): a deterministic automaton over bytes, and its minimisation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "tandem/core/config.hpp"

namespace tandem::inline v0::detail {

/// A DFA over bytes: state 0 is the start; `next[s * 256 + b]` is the state after byte b
/// from s, or -1 (no way to a match).
struct byte_dfa {
  std::vector<std::int32_t> next;
  std::vector<std::uint8_t> accepting;

  [[nodiscard]] std::size_t size() const noexcept { return accepting.size(); }
  /// Adds a state with no transitions and returns its index.
  std::int32_t add_state(bool accept) {
    next.resize(next.size() + 256, -1);
    accepting.push_back(accept ? 1 : 0);
    return static_cast<std::int32_t>(accepting.size() - 1);
  }
};

/// The states from which a state flagged in `accepting` is reachable, given each state's
/// predecessors `pred` (one flag per state).
inline std::vector<std::uint8_t> co_reachable(const std::vector<std::vector<std::int32_t>>& pred,
                                              const std::vector<std::uint8_t>& accepting) {
  const std::size_t n = pred.size();
  std::vector<std::uint8_t> live(n, 0);
  std::vector<std::int32_t> work;
  for (std::size_t s = 0; s < n; ++s)
    if (accepting[s] != 0) {
      live[s] = 1;
      work.push_back(static_cast<std::int32_t>(s));
    }
  while (!work.empty()) {
    const auto s = static_cast<std::size_t>(work.back());
    work.pop_back();
    for (const std::int32_t p : pred[s])
      if (live[static_cast<std::size_t>(p)] == 0) {
        live[static_cast<std::size_t>(p)] = 1;
        work.push_back(p);
      }
  }
  return live;
}

/// Keeps only the states reachable from the start from which an accepting state can be
/// reached, renumbered in order with the start at 0. Returns false when the start itself
/// cannot reach an accepting state (the language is empty); `dfa` is then unchanged.
inline bool trim(byte_dfa& dfa) {
  const std::size_t n = dfa.size();
  if (n == 0) return false;
  // Co-reachable: reverse edges, breadth-first from the accepting states.
  std::vector<std::vector<std::int32_t>> rev(n);
  for (std::size_t s = 0; s < n; ++s)
    for (std::size_t b = 0; b < 256; ++b)
      if (const std::int32_t t = dfa.next[s * 256 + b]; t >= 0) {
        auto& r = rev[static_cast<std::size_t>(t)];
        if (r.empty() || r.back() != static_cast<std::int32_t>(s))
          r.push_back(static_cast<std::int32_t>(s));
      }
  const std::vector<std::uint8_t> live = co_reachable(rev, dfa.accepting);
  if (live[0] == 0) return false;
  // Reachable through live states, numbered in breadth-first order.
  std::vector<std::int32_t> id(n, -1);
  std::vector<std::int32_t> queue{0};
  id[0] = 0;
  for (std::size_t k = 0; k < queue.size(); ++k) {
    const auto s = static_cast<std::size_t>(queue[k]);
    for (std::size_t b = 0; b < 256; ++b)
      if (const std::int32_t t = dfa.next[s * 256 + b];
          t >= 0 && live[static_cast<std::size_t>(t)] != 0 && id[static_cast<std::size_t>(t)] < 0) {
        id[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(queue.size());
        queue.push_back(t);
      }
  }
  byte_dfa out;
  out.next.assign(queue.size() * 256, -1);
  out.accepting.resize(queue.size());
  for (std::size_t k = 0; k < queue.size(); ++k) {
    const auto s = static_cast<std::size_t>(queue[k]);
    out.accepting[k] = dfa.accepting[s];
    for (std::size_t b = 0; b < 256; ++b)
      if (const std::int32_t t = dfa.next[s * 256 + b]; t >= 0)
        out.next[k * 256 + b] = id[static_cast<std::size_t>(t)];
  }
  dfa = std::move(out);
  return true;
}

/// Merges equivalent states (Moore's partition refinement over the byte classes that the
/// transition table distinguishes). Expects a trimmed DFA; leaves an equivalent, trimmed
/// DFA with the fewest states, start at 0.
inline void minimize(byte_dfa& dfa) {
  const std::size_t n = dfa.size();
  if (n <= 1) return;
  // Byte classes: bytes whose columns agree in every state (grouped by a hash of the
  // column, then compared with the class's representative).
  std::vector<std::int32_t> rep;  // one representative byte per class
  {
    std::vector<std::uint64_t> rep_hash;
    for (std::size_t b = 0; b < 256; ++b) {
      std::uint64_t h = 1469598103934665603ULL;
      for (std::size_t s = 0; s < n; ++s)
        h = (h ^ static_cast<std::uint32_t>(dfa.next[s * 256 + b])) * 1099511628211ULL;
      bool found = false;
      for (std::size_t r = 0; r < rep.size() && !found; ++r) {
        if (rep_hash[r] != h) continue;
        const auto c = static_cast<std::size_t>(rep[r]);
        found = true;
        for (std::size_t s = 0; s < n && found; ++s)
          found = dfa.next[s * 256 + b] == dfa.next[s * 256 + c];
      }
      if (!found) {
        rep.push_back(static_cast<std::int32_t>(b));
        rep_hash.push_back(h);
      }
    }
  }
  const std::size_t k = rep.size();
  std::vector<std::int32_t> block(n);
  for (std::size_t s = 0; s < n; ++s) block[s] = dfa.accepting[s];
  std::size_t blocks = 0;
  std::vector<std::int32_t> sig(k + 1);
  struct vec_hash {
    std::size_t operator()(const std::vector<std::int32_t>& v) const noexcept {
      std::size_t h = 1469598103934665603ULL;
      for (const std::int32_t x : v) h = (h ^ static_cast<std::uint32_t>(x)) * 1099511628211ULL;
      return h;
    }
  };
  for (;;) {
    std::unordered_map<std::vector<std::int32_t>, std::int32_t, vec_hash> ids;
    ids.reserve(n);
    std::vector<std::int32_t> next_block(n);
    for (std::size_t s = 0; s < n; ++s) {
      sig[0] = block[s];
      for (std::size_t c = 0; c < k; ++c) {
        const std::int32_t t = dfa.next[s * 256 + static_cast<std::size_t>(rep[c])];
        sig[c + 1] = t < 0 ? -1 : block[static_cast<std::size_t>(t)];
      }
      const auto [it, fresh] = ids.emplace(sig, static_cast<std::int32_t>(ids.size()));
      next_block[s] = it->second;
    }
    block = std::move(next_block);
    if (ids.size() == blocks) break;
    blocks = ids.size();
  }
  if (blocks == n) return;
  // Renumber blocks so that the start's block is 0, in order of first appearance.
  std::vector<std::int32_t> id(blocks, -1);
  std::int32_t count = 0;
  for (std::size_t s = 0; s < n; ++s)
    if (id[static_cast<std::size_t>(block[s])] < 0)
      id[static_cast<std::size_t>(block[s])] = count++;
  byte_dfa out;
  out.next.assign(blocks * 256, -1);
  out.accepting.assign(blocks, 0);
  for (std::size_t s = 0; s < n; ++s) {
    const auto m = static_cast<std::size_t>(id[static_cast<std::size_t>(block[s])]);
    out.accepting[m] = dfa.accepting[s];
    for (std::size_t b = 0; b < 256; ++b)
      if (const std::int32_t t = dfa.next[s * 256 + b]; t >= 0)
        out.next[m * 256 + b] = id[static_cast<std::size_t>(block[static_cast<std::size_t>(t)])];
  }
  dfa = std::move(out);
}

}  // namespace tandem::inline v0::detail
