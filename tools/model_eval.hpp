// tandem tools: measurements on llama.cpp models through tandem's own adapter, shared by
// tandem-train-gguf, tandem-grow-gguf, bench_backends and their tests.
//
//   heldout_perplexity   per-token perplexity of one model over text lines
//   greedy_acceptance    how often a draft's argmax equals a target's argmax along the
//                        target's greedy continuation of prompts
//   read_lines           the non-empty lines of a text file
//
// Needs tandem::llama_cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "tandem/backends/llama_cpp.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/logits.hpp"
#include "tandem/core/result.hpp"

namespace tandem::inline v0::tools {

/// The non-empty lines of the text file at `path` (without line ends), at most
/// `max_lines` of them (0: all). Errors: file_not_found, io_error, empty_input (no line).
[[nodiscard]] inline result<std::vector<std::string>> read_lines(const char* path,
                                                                 std::size_t max_lines = 0) {
  std::FILE* f = std::fopen(path, "rb");
  if (f == nullptr) return errc::file_not_found;
  std::vector<std::string> lines;
  std::string cur;
  int c = 0;
  while ((c = std::fgetc(f)) != EOF) {
    if (c == '\n') {
      if (!cur.empty() && cur.back() == '\r') cur.pop_back();
      if (!cur.empty()) lines.push_back(std::move(cur));
      cur.clear();
      if (max_lines != 0 && lines.size() == max_lines) break;
    } else {
      cur += static_cast<char>(c);
    }
  }
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  if (bad) return errc::io_error;
  if (!cur.empty() && (max_lines == 0 || lines.size() < max_lines)) lines.push_back(cur);
  if (lines.empty()) return errc::empty_input;
  return lines;
}

/// Encodes one line as the model sees it in training: BOS (when the model has one), the
/// line's tokens, EOS (when the model has one). Errors: those of llama_tokenizer::encode.
[[nodiscard]] inline errc encode_line(const llama_tokenizer& tok, const std::string& line,
                                      std::vector<token_id>& out) {
  if (auto b = tok.bos(); b) out.push_back(*b);
  if (const errc e = tok.encode(line, out); e != errc::ok) return e;
  if (auto e = tok.eos(); e) out.push_back(*e);
  return errc::ok;
}

/// Result of heldout_perplexity.
struct perplexity_result {
  double perplexity = 0.0;  ///< exp(mean negative log-likelihood per predicted token)
  std::size_t tokens = 0;   ///< predicted tokens (every token after the leading BOS)
};

/// Perplexity of `model` over `lines`, each encoded by encode_line and scored in a fresh
/// context (one llama_session, cleared between lines); lines longer than the context are
/// cut to it. Errors: empty_input (no predicted token), those of llama_session::create,
/// score and the tokenizer, non_finite (NaN/Inf logits).
[[nodiscard]] inline result<perplexity_result> heldout_perplexity(
    const llama_model_handle& model, const std::vector<std::string>& lines, int threads = 2) {
  llama_session_options so;
  so.threads = threads;
  so.context_size = static_cast<std::uint32_t>(std::min<std::size_t>(
      model.training_context_length() == 0 ? 512 : model.training_context_length(), 512));
  auto s = llama_session::create(model, so);
  if (!s) return s.error();
  const llama_tokenizer tok(model);
  const std::size_t nv = s->vocab_size();
  std::vector<token_id> ids;
  std::vector<float> rows, lp(nv);
  double nll = 0.0;
  std::size_t count = 0;
  for (const std::string& line : lines) {
    ids.clear();
    if (const errc e = encode_line(tok, line, ids); e != errc::ok) return e;
    if (ids.size() > s->context_length()) ids.resize(s->context_length());
    if (ids.size() < 2) continue;
    s->clear();
    rows.resize(ids.size() * nv);
    if (const errc e = s->score(ids, rows); e != errc::ok) return e;
    for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
      const std::span<const float> row(rows.data() + i * nv, nv);
      if (const errc e = kernels::log_softmax(row, lp); e != errc::ok) return e;
      nll -= lp[static_cast<std::size_t>(ids[i + 1])];
      ++count;
    }
  }
  if (count == 0) return errc::empty_input;
  return perplexity_result{std::exp(nll / static_cast<double>(count)), count};
}

/// Result of greedy_acceptance.
struct acceptance_result {
  double rate = 0.0;                ///< matches / positions
  std::size_t positions = 0;        ///< compared positions
  std::size_t matches = 0;          ///< positions where both argmaxes agree
  double max_abs_logit_diff = 0.0;  ///< largest |draft - target| logit seen
};

/// Greedy acceptance of `draft` against `target`: for each prompt (encode_line without
/// the EOS, cut to `prompt_tokens`), the target continues greedily for `n_new` tokens;
/// at every position (the prompt's end and each generated token) the draft's argmax is
/// compared with the target's. Both models must share the vocabulary.
/// Errors: vocab_mismatch (vocabulary sizes differ), empty_input (no position), and those of
/// the sessions, the tokenizer and the kernels.
[[nodiscard]] inline result<acceptance_result> greedy_acceptance(
    const llama_model_handle& draft, const llama_model_handle& target,
    const std::vector<std::string>& prompts, std::size_t prompt_tokens, std::size_t n_new,
    int threads = 2) {
  if (draft.vocab_size() != target.vocab_size()) return errc::vocab_mismatch;
  llama_session_options so;
  so.threads = threads;
  so.context_size = static_cast<std::uint32_t>(prompt_tokens + n_new + 8);
  auto ds = llama_session::create(draft, so);
  if (!ds) return ds.error();
  auto ts = llama_session::create(target, so);
  if (!ts) return ts.error();
  const llama_tokenizer tok(target);
  acceptance_result r;
  std::vector<token_id> ids;
  for (const std::string& p : prompts) {
    ids.clear();
    if (auto b = tok.bos(); b) ids.push_back(*b);
    if (const errc e = tok.encode(p, ids); e != errc::ok) return e;
    if (ids.size() > prompt_tokens) ids.resize(prompt_tokens);
    ds->clear();
    ts->clear();
    if (const errc e = ds->append(ids); e != errc::ok) return e;
    if (const errc e = ts->append(ids); e != errc::ok) return e;
    for (std::size_t k = 0; k <= n_new; ++k) {
      const auto dl = ds->logits();
      const auto tl = ts->logits();
      auto da = kernels::argmax(dl);
      if (!da) return da.error();
      auto ta = kernels::argmax(tl);
      if (!ta) return ta.error();
      for (std::size_t i = 0; i < tl.size(); ++i)
        r.max_abs_logit_diff =
            std::max(r.max_abs_logit_diff, static_cast<double>(std::fabs(dl[i] - tl[i])));
      ++r.positions;
      if (*da == *ta) ++r.matches;
      if (k == n_new) break;
      const token_id next = static_cast<token_id>(*ta);
      if (tok.is_eog(next)) break;
      if (const errc e = ds->append({&next, 1}); e != errc::ok) return e;
      if (const errc e = ts->append({&next, 1}); e != errc::ok) return e;
    }
  }
  if (r.positions == 0) return errc::empty_input;
  r.rate = static_cast<double>(r.matches) / static_cast<double>(r.positions);
  return r;
}

}  // namespace tandem::inline v0::tools
