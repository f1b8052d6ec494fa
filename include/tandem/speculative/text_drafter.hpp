// tandem: text_drafter, a drafter whose model has another tokenizer than the target
// (universal assisted decoding). It drafts in the draft model's own tokens, turns the
// draft into text, and re-tokenizes that text for the target together with a lookback of
// the history's last target tokens, so that token boundaries realign; the target verifies
// the resulting target tokens as usual, so verification stays exact. The draft model's
// context follows the accepted text: the accepted suffix is re-tokenized for the draft
// model, again with a lookback.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"
#include "tandem/speculative/drafter.hpp"

namespace tandem::inline v0 {

/// Options of a text_drafter.
struct text_drafter_options {
  /// Tokens re-tokenized before the first new character, on each side: the draft model's
  /// last tokens before new accepted text, and the history's last target tokens before
  /// the draft text. More realigns boundaries more often, at the cost of longer encodes.
  /// Must lie in [1, 64].
  std::size_t lookback = 4;
  /// Draft tokens drafted beyond the target's max_tokens (text lengths per token differ
  /// between tokenizers). Must lie in [0, max_draft_length].
  std::size_t extra_draft_tokens = 1;
};

/// Checks text_drafter options: invalid_argument (the value in `*info` when given) for a
/// lookback outside [1, 64] or extra_draft_tokens above max_draft_length; else ok.
[[nodiscard]] inline errc validate(const text_drafter_options& o,
                                   error_info* info = nullptr) noexcept {
  if (o.lookback < 1 || o.lookback > 64)
    return detail::fail(info, errc::invalid_argument, "text_drafter: lookback %zu outside [1, 64]",
                        o.lookback);
  if (o.extra_draft_tokens > max_draft_length)
    return detail::fail(info, errc::invalid_argument,
                        "text_drafter: extra_draft_tokens %zu above %zu", o.extra_draft_tokens,
                        max_draft_length);
  return errc::ok;
}

namespace detail {

/// How a tokenizer lays out text: its pieces concatenate to `lead` + text, where `lead`
/// is empty or one space (a sentencepiece-style dummy prefix that encode adds).
template <Tokenizer T>
struct text_side {
  const T* tok = nullptr;
  bool lead = false;  // encode(x) yields pieces " " + x

  // Probes the tokenizer: encode("a") spelled back through piece().
  errc probe() {
    std::vector<token_id> ids;
    std::string s;
    TANDEM_TRY(tok->encode("a", ids));
    for (const token_id x : ids) TANDEM_TRY(tok->piece(x, s));
    if (s == " a")
      lead = true;
    else if (s != "a")
      return errc::unsupported;
    return errc::ok;
  }
  // True when text[at..] can be encoded on its own as it would appear at `at`.
  [[nodiscard]] bool boundary(std::string_view text, std::size_t at) const noexcept {
    return at == 0 || !lead || (at < text.size() && text[at] == ' ');
  }
  // Encodes text[at..] (at a boundary) into `ids` (appended) and the end offset of each
  // token in text coordinates into `ends`. Errors: the tokenizer's, unsupported (pieces do
  // not spell the text back).
  errc encode_at(std::string_view text, std::size_t at, std::vector<token_id>& ids,
                 std::vector<std::size_t>& ends, std::string& scratch) const {
    const std::size_t first = ids.size(), first_end = ends.size();
    std::string_view s = text.substr(at);
    if (lead && at > 0) s.remove_prefix(1);  // the encoder's space stands for text[at]
    if (s.empty()) return errc::ok;
    TANDEM_TRY(tok->encode(s, ids));
    // Pieces cover " " + text when lead and at == 0: that space is not in the text.
    std::size_t pos = at;
    std::size_t skip = (lead && at == 0) ? 1 : 0;
    for (std::size_t i = first; i < ids.size(); ++i) {
      scratch.clear();
      TANDEM_TRY(tok->piece(ids[i], scratch));
      std::size_t len = scratch.size();
      const std::size_t drop = std::min(skip, len);
      skip -= drop;
      len -= drop;
      pos += len;
      ends.push_back(pos);
    }
    if (pos != text.size()) {
      ids.resize(first);
      ends.resize(first_end);
      return errc::unsupported;
    }
    return errc::ok;
  }
};

}  // namespace detail

/// Drafts for a target whose tokenizer differs from the draft model's (universal assisted
/// decoding): the draft model M (a Rewindable LanguageModel with tokenizer DT) drafts in
/// its own tokens with sampler S; the draft's text is re-tokenized with the target's
/// tokenizer TT together with the text of the history's last `lookback` target tokens,
/// and the target tokens after the history are proposed (as one-hot drafts: verification
/// then stays exact for greedy and for sampling, whatever the draft model). Target
/// tokens in the history become text through TT's piece() (control tokens are empty);
/// the draft model's context is `prefix` (e.g. its BOS) followed by that text
/// re-tokenized with DT, updated on each call with a lookback of `lookback` draft tokens.
///
/// Both tokenizers must spell text as the concatenation of their pieces, optionally after
/// one leading space their encode adds (sentencepiece's dummy prefix); create() probes
/// this (unsupported otherwise). A text that cannot be realigned (e.g. the draft
/// continues the history's last word and the target's tokenizer would merge them) gives
/// no draft that round: a plain target step.
///
/// Borrows the model and both tokenizers (they must outlive the drafter; the model must
/// be used by nothing else and be empty at the first draft); owns the sampler. Allocates:
/// the text and token mirrors grow with the sequence (reserve() sizes them), and each
/// draft calls both tokenizers' encode, which allocate.
template <LanguageModel M, Sampler S, Tokenizer DT, Tokenizer TT>
requires Rewindable<M>
class text_drafter {
 public:
  /// A drafter over `model` (tokenizer `draft_tok`) for a target with tokenizer
  /// `target_tok`. `prefix`: draft tokens put before the text (copied; may be empty).
  /// Errors, details in `*info` when given: invalid_argument (options out of range, an
  /// empty vocabulary), vocab_mismatch (draft_tok's vocabulary size is not the model's),
  /// unsupported (a tokenizer whose pieces do not spell its text back), the tokenizers'
  /// encode errors.
  [[nodiscard]] static result<text_drafter> create(M& model, S sampler, const DT& draft_tok,
                                                   const TT& target_tok,
                                                   std::span<const token_id> prefix = {},
                                                   text_drafter_options options = {},
                                                   error_info* info = nullptr) {
    TANDEM_TRY(tandem::validate(options, info));
    if (static_cast<std::size_t>(model.vocab_size()) != draft_tok.vocab_size())
      return detail::fail(info, errc::vocab_mismatch,
                          "text_drafter: draft model vocabulary %zu, draft tokenizer %zu",
                          static_cast<std::size_t>(model.vocab_size()), draft_tok.vocab_size());
    if (target_tok.vocab_size() == 0)
      return detail::fail(info, errc::invalid_argument, "text_drafter: empty target vocabulary");
    text_drafter d(model, std::move(sampler), draft_tok, target_tok, prefix, options);
    if (const errc e = d.draft_.probe(); e != errc::ok)
      return detail::fail(info, e, "text_drafter: the draft tokenizer does not spell \"a\" back");
    if (const errc e = d.target_.probe(); e != errc::ok)
      return detail::fail(info, e, "text_drafter: the target tokenizer does not spell \"a\" back");
    return d;
  }

  /// The target's vocabulary size (what the drafted ids index).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return target_.tok->vocab_size(); }
  /// The draft model.
  [[nodiscard]] M& model() noexcept { return *model_; }
  /// The text of the history seen at the last draft (without a tokenizer's dummy prefix).
  [[nodiscard]] std::string_view text() const noexcept { return text_; }
  /// Rounds that proposed nothing because the draft text could not be realigned.
  [[nodiscard]] std::size_t unaligned_rounds() const noexcept { return unaligned_; }

  /// Sizes the mirrors for sequences of up to `tokens` tokens and `chars` bytes of text.
  void reserve(std::size_t tokens, std::size_t chars) {
    text_.reserve(chars);
    t_ids_.reserve(tokens);
    t_ends_.reserve(tokens);
    d_ids_.reserve(tokens + max_draft_length);
    d_ends_.reserve(tokens + max_draft_length);
  }

  /// Brings the text and the draft model's context to `req.history`, drafts up to
  /// `req.max_tokens + extra_draft_tokens` draft tokens (stopping at a token without
  /// text), and proposes up to `req.max_tokens` target tokens (without probabilities).
  /// Errors: empty_input (empty history), invalid_argument (max_tokens outside
  /// [1, max_draft_length] or a too small token span), invalid_token (a history id outside
  /// the target's vocabulary, or the sampler's id outside the draft's), the tokenizers'
  /// errors, the model's append/rewind errors, the sampler's errors. After an error the
  /// drafter rebuilds the draft model's context on the next call.
  [[nodiscard]] result<draft_result> draft(const draft_request& req) {
    if (req.history.empty()) return errc::empty_input;
    if (req.max_tokens == 0 || req.max_tokens > max_draft_length ||
        req.tokens.size() < req.max_tokens)
      return errc::invalid_argument;
    const errc e = sync(req.history);
    if (e == errc::unsupported) return draft_result{};  // text the draft cannot realign
    if (e != errc::ok) {
      broken_ = true;
      return e;
    }
    if (model_->size() == 0) return draft_result{};  // no text and no prefix yet

    // Draft in the draft model's tokens; collect the text.
    dtext_.clear();
    const std::size_t k = std::min(max_draft_length, req.max_tokens + options_.extra_draft_tokens);
    const std::size_t vocab = static_cast<std::size_t>(model_->vocab_size());
    std::size_t fed = 0;
    for (std::size_t i = 0; i < k; ++i) {
      const result<token_id> t = sampler_.sample(model_->logits());
      if (!t) return fail_draft(fed, t.error());
      if (*t < 0 || static_cast<std::size_t>(*t) >= vocab)
        return fail_draft(fed, errc::invalid_token);
      const std::size_t before = dtext_.size();
      if (const errc pe = draft_.tok->piece(*t, dtext_); pe != errc::ok) return fail_draft(fed, pe);
      if (dtext_.size() == before) break;  // a control token: the text ends here
      if (i + 1 == k) break;
      if (const errc ae = model_->append(std::span<const token_id>(&*t, 1)); ae != errc::ok) {
        broken_ = true;
        return fail_draft(fed, ae);
      }
      ++fed;
    }
    TANDEM_TRY(fail_draft(fed, errc::ok));  // rewind the draft tokens fed
    if (fed > 0) fresh_ = false;            // rewinding left the logits unspecified
    // At the text's start the draft's first piece carries its dummy-prefix space.
    if (draft_.lead && text_.empty() && !dtext_.empty() && dtext_[0] == ' ') dtext_.erase(0, 1);
    if (dtext_.empty()) return draft_result{};
    const std::size_t count = translate(req);
    return draft_result{count, false};
  }

 private:
  text_drafter(M& model, S sampler, const DT& dt, const TT& tt, std::span<const token_id> prefix,
               text_drafter_options options)
      : model_(&model),
        sampler_(std::move(sampler)),
        prefix_(prefix.begin(), prefix.end()),
        options_(options) {
    draft_.tok = &dt;
    target_.tok = &tt;
  }

  // Rewinds the `fed` draft tokens appended while drafting; returns `e` (or the rewind's
  // error when `e` is ok).
  errc fail_draft(std::size_t fed, errc e) {
    if (fed > 0) {
      if (const errc r = model_->rewind(fed); r != errc::ok) {
        broken_ = true;
        return e == errc::ok ? r : e;
      }
    }
    return e;
  }

  // Updates text_ and the target mirror to `history`, then the draft model's context.
  errc sync(std::span<const token_id> history) {
    const std::size_t vt = target_.tok->vocab_size();
    std::size_t common = 0;
    const std::size_t n = std::min(t_ids_.size(), history.size());
    while (common < n && t_ids_[common] == history[common]) ++common;
    t_ids_.resize(common);
    t_ends_.resize(common);
    const std::size_t valid = common == 0 ? 0 : t_ends_.back();
    text_.resize(valid);
    for (std::size_t i = common; i < history.size(); ++i) {
      const token_id x = history[i];
      if (x < 0 || static_cast<std::size_t>(x) >= vt) return errc::invalid_token;
      const std::size_t before = text_.size();
      TANDEM_TRY(target_.tok->piece(x, text_));
      // The target's dummy prefix is not part of the text.
      if (target_.lead && before == 0 && text_.size() > 0 && text_[0] == ' ') text_.erase(0, 1);
      t_ids_.push_back(x);
      t_ends_.push_back(text_.size());
    }
    return sync_draft(valid);
  }

  // Re-tokenizes the text after the draft model's last `lookback` tokens that lie within
  // the first `valid` bytes (unchanged since the last call).
  errc sync_draft(std::size_t valid) {
    if (broken_ || static_cast<std::size_t>(model_->size()) != prefix_.size() + d_ids_.size()) {
      // Start over: an earlier failure left the model unknown.
      if (model_->size() > 0) TANDEM_TRY(model_->rewind(static_cast<std::size_t>(model_->size())));
      d_ids_.clear();
      d_ends_.clear();
      broken_ = false;
      if (!prefix_.empty()) TANDEM_TRY(model_->append(prefix_));
    }
    std::size_t keep = 0;
    while (keep < d_ends_.size() && d_ends_[keep] <= valid) ++keep;
    keep -= std::min(keep, options_.lookback);
    while (keep > 0 && !draft_.boundary(text_, d_ends_[keep - 1])) --keep;
    // Encoding from the text's start yields the tokens that end at 0 (a lone dummy-prefix
    // space) again.
    if (keep > 0 && d_ends_[keep - 1] == 0) keep = 0;
    const std::size_t at = keep == 0 ? 0 : d_ends_[keep - 1];
    if (keep == d_ends_.size() && at == text_.size() && fresh_) return errc::ok;
    fresh_ = false;
    new_ids_.clear();
    new_ends_.clear();
    const errc e = draft_.encode_at(text_, at, new_ids_, new_ends_, scratch_);
    if (e != errc::ok) {
      broken_ = true;
      return e;
    }
    // Keep what is unchanged; feed at least one token so the logits are fresh.
    std::size_t same = 0;
    while (keep + same < d_ids_.size() && same < new_ids_.size() &&
           d_ids_[keep + same] == new_ids_[same] && d_ends_[keep + same] == new_ends_[same])
      ++same;
    const std::size_t drop = d_ids_.size() - (keep + same);
    if (drop > 0) TANDEM_TRY(model_->rewind(drop));
    d_ids_.resize(keep + same);
    d_ends_.resize(keep + same);
    errc ae = errc::ok;
    if (same < new_ids_.size()) {
      const std::span<const token_id> rest = std::span<const token_id>(new_ids_).subspan(same);
      ae = model_->append(rest);
      if (ae == errc::ok) {
        d_ids_.insert(d_ids_.end(), rest.begin(), rest.end());
        d_ends_.insert(d_ends_.end(), new_ends_.begin() + static_cast<std::ptrdiff_t>(same),
                       new_ends_.end());
      }
    } else if (model_->size() == 0) {
      return errc::ok;  // no prefix and no text: nothing to condition on yet
    } else {
      // Nothing new: refeed the last token for fresh logits.
      const token_id last = d_ids_.empty() ? prefix_.back() : d_ids_.back();
      ae = model_->rewind(1);
      if (ae == errc::ok) ae = model_->append(std::span<const token_id>(&last, 1));
    }
    if (ae != errc::ok) {
      broken_ = true;
      return ae;
    }
    fresh_ = true;
    return errc::ok;
  }

  // Re-tokenizes the history's tail and the draft text for the target; writes the target
  // tokens after the history to req.tokens and returns how many.
  std::size_t translate(const draft_request& req) {
    const std::size_t h = t_ids_.size();
    std::size_t j = h - std::min(h, options_.lookback);
    auto start_of = [&](std::size_t i) { return i == 0 ? std::size_t{0} : t_ends_[i - 1]; };
    while (j > 0 && !target_.boundary(text_, start_of(j))) --j;
    const std::size_t at = start_of(j);
    joined_.assign(text_);
    joined_ += dtext_;
    new_ids_.clear();
    new_ends_.clear();
    if (target_.encode_at(joined_, at, new_ids_, new_ends_, scratch_) != errc::ok) {
      ++unaligned_;
      return 0;
    }
    // The tokens up to the history's end must be the history's own (control tokens aside).
    const auto skip_control = [&](std::size_t x) {
      while (x < h && t_ends_[x] == start_of(x)) ++x;
      return x;
    };
    std::size_t i = 0, hist = skip_control(j);
    while (i < new_ids_.size() && new_ends_[i] <= text_.size() && hist < h &&
           new_ids_[i] == t_ids_[hist]) {
      ++i;
      hist = skip_control(hist + 1);
    }
    const std::size_t covered = i == 0 ? at : new_ends_[i - 1];
    if (hist != h || covered != text_.size()) {
      ++unaligned_;
      return 0;
    }
    std::size_t count = 0;
    for (; i < new_ids_.size() && count < req.max_tokens; ++i) req.tokens[count++] = new_ids_[i];
    return count;
  }

  M* model_;
  S sampler_;
  detail::text_side<DT> draft_;
  detail::text_side<TT> target_;
  std::vector<token_id> prefix_;
  text_drafter_options options_;
  std::string text_;                 // the history's text
  std::vector<token_id> t_ids_;      // the history, as last seen
  std::vector<std::size_t> t_ends_;  // text_ offset after each history token
  std::vector<token_id> d_ids_;      // the draft model's context after prefix_
  std::vector<std::size_t> d_ends_;  // text_ offset after each of d_ids_
  std::vector<token_id> new_ids_;
  std::vector<std::size_t> new_ends_;
  std::string dtext_, joined_, scratch_;
  std::size_t unaligned_ = 0;
  bool broken_ = false;
  bool fresh_ = false;  // the model's logits follow its whole context
};

}  // namespace tandem::inline v0
