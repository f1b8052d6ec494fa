// tandem: vocabulary maps between two tokenizers, and mapped_model, which presents a
// LanguageModel in another tokenizer's vocabulary.
//
// Tokens are matched by their normalised text: sentencepiece's U+2581 and byte-level BPE's
// U+0120 (and the rest of the GPT-2 byte alphabet) become the bytes they stand for, a
// byte-fallback token <0xNN> becomes byte NN, and special tokens (<s>, </s>, <unk>, ...)
// match special tokens of the same raw text only. The map is one token to one token: a
// token whose text the other vocabulary holds only as several tokens has no counterpart.
// When several tokens of the other vocabulary share a text, a token of the same kind
// (text piece or byte token) is preferred, then the lowest id.
//
// This header does not depend on any tokenizer library: a vocabulary is read through a
// "piece source", any callable token_id -> result<token_piece>. piece_source_of(t) makes
// one from a tokenizer exposing raw_piece/is_byte/is_control/is_unknown (as the
// sentencepiece adapter does).
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// How a tokenizer writes its pieces.
enum class piece_style : unsigned char {
  plain,          ///< the text itself
  sentencepiece,  ///< U+2581 is a space; byte tokens are `<0xNN>`
  byte_level,     ///< GPT-2 byte-level BPE: every byte is one code point (U+0120 = space)
};

/// What kind of token a piece is.
enum class piece_kind : unsigned char {
  text,     ///< an ordinary piece of text
  byte,     ///< a byte-fallback token, raw text `<0xNN>` (or the byte itself)
  special,  ///< control/unknown tokens: matched by raw text, only against specials
};

/// One token's raw piece as its tokenizer stores it, and its kind. `text` need only stay
/// valid until the piece source is called again.
struct token_piece {
  std::string_view text;               ///< the raw piece, borrowed from the source
  piece_kind kind = piece_kind::text;  ///< how the piece is matched
};

/// A callable that gives the raw piece of a token id in [0, vocab size).
template <class F>
concept PieceSource = requires(F& f, token_id id) {
  { f(id) } -> std::convertible_to<result<token_piece>>;
};

/// A piece source over a tokenizer with `raw_piece(id) -> result<std::string_view>`,
/// `is_byte(id)`, `is_control(id)` and `is_unknown(id)` (e.g. sentencepiece_tokenizer,
/// llama_tokenizer); a token for which the tokenizer's optional `is_unused(id)` is true
/// (a padding entry) is special too.
/// The tokenizer is referenced, not copied: it must outlive the source.
template <class T>
requires requires(const T& t, token_id id) {
  { t.raw_piece(id) } -> std::convertible_to<result<std::string_view>>;
  { t.is_byte(id) } -> std::convertible_to<bool>;
  { t.is_control(id) } -> std::convertible_to<bool>;
  { t.is_unknown(id) } -> std::convertible_to<bool>;
}
[[nodiscard]] auto piece_source_of(const T& tokenizer) noexcept {
  return [&tokenizer](token_id id) -> result<token_piece> {
    const result<std::string_view> raw = tokenizer.raw_piece(id);
    if (!raw) return raw.error();
    piece_kind k = piece_kind::text;
    if (tokenizer.is_byte(id))
      k = piece_kind::byte;
    else if (tokenizer.is_control(id) || tokenizer.is_unknown(id))
      k = piece_kind::special;
    else if constexpr (requires { tokenizer.is_unused(id); })
      if (tokenizer.is_unused(id)) k = piece_kind::special;
    return token_piece{*raw, k};
  };
}

namespace detail {

/// Byte-level BPE's alphabet: the byte a code point stands for, or -1.
[[nodiscard]] constexpr int byte_level_byte(std::uint32_t cp) noexcept {
  const auto direct = [](std::uint32_t b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  if (cp < 0x100) return direct(cp) ? static_cast<int>(cp) : -1;
  if (cp >= 0x100 + 68) return -1;
  // The 68 bytes without a printable code point of their own get 0x100, 0x101, ... in order.
  std::uint32_t n = 0;
  for (std::uint32_t b = 0; b < 0x100; ++b) {
    if (direct(b)) continue;
    if (n == cp - 0x100) return static_cast<int>(b);
    ++n;
  }
  return -1;
}

/// Decodes one UTF-8 code point at s[i]; advances i. Returns false on malformed input.
[[nodiscard]] inline bool next_code_point(std::string_view s, std::size_t& i,
                                          std::uint32_t& cp) noexcept {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  if (c < 0x80) {
    cp = c;
    len = 1;
  } else if ((c & 0xE0) == 0xC0) {
    cp = c & 0x1F;
    len = 2;
  } else if ((c & 0xF0) == 0xE0) {
    cp = c & 0x0F;
    len = 3;
  } else if ((c & 0xF8) == 0xF0) {
    cp = c & 0x07;
    len = 4;
  } else {
    return false;
  }
  if (i + len > s.size()) return false;
  for (std::size_t j = 1; j < len; ++j) {
    const auto cc = static_cast<unsigned char>(s[i + j]);
    if ((cc & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (cc & 0x3F);
  }
  i += len;
  return true;
}

/// Parses `<0xNN>` (either case), or a single byte, into the byte; -1 otherwise.
[[nodiscard]] inline int parse_byte_piece(std::string_view s) noexcept {
  if (s.size() == 1) return static_cast<unsigned char>(s[0]);
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  int v = 0;
  for (std::size_t i = 3; i < 5; ++i) {
    const char c = s[i];
    int d = -1;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

}  // namespace detail

/// The normalised text of a text piece written in `style`, into `out` (replaced). Returns
/// false when the piece is not valid in that style (malformed UTF-8, a code point outside
/// the byte-level alphabet); `out` is then unspecified.
[[nodiscard]] inline bool normalize_piece(piece_style style, std::string_view raw,
                                          std::string& out) {
  out.clear();
  switch (style) {
    case piece_style::plain:
      out.assign(raw);
      return true;
    case piece_style::sentencepiece: {
      constexpr std::string_view mark = "\xE2\x96\x81";
      for (std::size_t i = 0; i < raw.size();) {
        if (raw.substr(i, mark.size()) == mark) {
          out.push_back(' ');
          i += mark.size();
        } else {
          out.push_back(raw[i++]);
        }
      }
      return true;
    }
    case piece_style::byte_level: {
      for (std::size_t i = 0; i < raw.size();) {
        std::uint32_t cp = 0;
        if (!detail::next_code_point(raw, i, cp)) return false;
        const int b = detail::byte_level_byte(cp);
        if (b < 0) return false;
        out.push_back(static_cast<char>(b));
      }
      return true;
    }
  }
  return false;
}

/// How much of one vocabulary a vocab_map covers.
struct vocab_coverage {
  std::size_t from_size = 0;       ///< tokens in the `from` vocabulary
  std::size_t to_size = 0;         ///< tokens in the `to` vocabulary
  std::size_t mapped = 0;          ///< `from` tokens with a counterpart
  std::size_t mapped_text = 0;     ///< of those, text pieces
  std::size_t mapped_byte = 0;     ///< of those, byte tokens
  std::size_t mapped_special = 0;  ///< of those, special tokens
  std::size_t reached = 0;         ///< distinct `to` tokens some `from` token maps to
  std::size_t round_trips = 0;     ///< `from` tokens t with back(forward(t)) == t
  /// mapped / from_size (0 for an empty vocabulary).
  [[nodiscard]] double fraction() const noexcept {
    return from_size == 0 ? 0.0 : static_cast<double>(mapped) / static_cast<double>(from_size);
  }
};

/// A token-to-token map from vocabulary `from` to vocabulary `to`, and its reverse. Built
/// once (allocating); lookups and map_logits never allocate. Copyable; immutable after
/// build, so it may be shared by threads.
class vocab_map {
 public:
  /// Id stored for a token without a counterpart.
  static constexpr token_id none = -1;

  /// Builds the map between the vocabularies read through `from` (ids [0, from_size),
  /// pieces written in `from_style`) and `to`. Errors: empty_input (a size of 0),
  /// invalid_argument (a size above INT32_MAX), or the first error a piece source
  /// returns. Allocates its tables (an allocation failure is not reported: it ends the
  /// program, as the standard containers do without exceptions).
  template <PieceSource From, PieceSource To>
  [[nodiscard]] static result<vocab_map> build(std::size_t from_size, From&& from,
                                               piece_style from_style, std::size_t to_size, To&& to,
                                               piece_style to_style) {
    constexpr auto lim = static_cast<std::size_t>(std::numeric_limits<token_id>::max());
    if (from_size == 0 || to_size == 0) return errc::empty_input;
    if (from_size > lim || to_size > lim) return errc::invalid_argument;
    side a, b;
    TANDEM_TRY(a.read(from_size, from, from_style));
    TANDEM_TRY(b.read(to_size, to, to_style));
    vocab_map m;
    m.forward_ = b.match_all(a);
    m.backward_ = a.match_all(b);
    m.spell_ = b.spell_all(a, m.forward_);
    m.back_spell_ = a.spell_all(b, m.backward_);
    m.kinds_ = std::move(a.kinds);
    m.to_kinds_ = std::move(b.kinds);
    return m;
  }

  /// Size of the `from` vocabulary (the ids map_token accepts).
  [[nodiscard]] std::size_t from_size() const noexcept { return forward_.size(); }
  /// Size of the `to` vocabulary.
  [[nodiscard]] std::size_t to_size() const noexcept { return backward_.size(); }

  /// The `to` token matching `from` token `id`. Errors: invalid_token (id outside
  /// [0, from_size())), not_found (no counterpart).
  [[nodiscard]] result<token_id> map_token(token_id id) const noexcept {
    if (id < 0 || static_cast<std::size_t>(id) >= forward_.size()) return errc::invalid_token;
    const token_id r = forward_[static_cast<std::size_t>(id)];
    if (r == none) return errc::not_found;
    return r;
  }

  /// Maps every id of `in` into `out` (same size). Errors, `out` unspecified:
  /// size_mismatch, invalid_token, not_found (a token without a counterpart).
  [[nodiscard]] errc map_tokens(std::span<const token_id> in,
                                std::span<token_id> out) const noexcept {
    if (in.size() != out.size()) return errc::size_mismatch;
    for (std::size_t i = 0; i < in.size(); ++i) {
      const auto r = map_token(in[i]);
      if (!r) return r.error();
      out[i] = *r;
    }
    return errc::ok;
  }

  /// Expresses logits over the `to` vocabulary in the `from` vocabulary:
  /// out[i] = to_logits[forward(i)], -inf for a token without a counterpart (so masked
  /// entries never come from it). Errors: size_mismatch (to_logits.size() != to_size() or
  /// out.size() != from_size()), leaving `out` untouched. Values are copied as they are
  /// (NaN included: the kernels reading `out` reject it).
  [[nodiscard]] errc map_logits(std::span<const float> to_logits,
                                std::span<float> out) const noexcept {
    if (to_logits.size() != backward_.size() || out.size() != forward_.size())
      return errc::size_mismatch;
    constexpr float ninf = -std::numeric_limits<float>::infinity();
    const token_id* f = forward_.data();
    const float* src = to_logits.data();
    float* dst = out.data();
    for (std::size_t i = 0, n = forward_.size(); i < n; ++i)
      dst[i] = f[i] == none ? ninf : src[static_cast<std::size_t>(f[i])];
    return errc::ok;
  }

  /// The `to` tokens that spell `from` token `id`: its counterpart alone when it has one;
  /// else its normalised text split greedily into the longest `to` pieces (falling back
  /// to `to`'s byte tokens), which need not be how `to`'s tokenizer would split it; empty
  /// when `id` is outside [0, from_size()), a special token without a counterpart, or a
  /// text `to` cannot spell. The view lives as long as the map.
  [[nodiscard]] std::span<const token_id> spelling(token_id id) const noexcept {
    return spell_.of(id);
  }

  /// The map from `to` back to `from` (built from the same pieces and rules).
  [[nodiscard]] vocab_map reversed() const {
    vocab_map r;
    r.forward_ = backward_;
    r.backward_ = forward_;
    r.spell_ = back_spell_;
    r.back_spell_ = spell_;
    r.kinds_ = to_kinds_;
    r.to_kinds_ = kinds_;
    return r;
  }

  /// Coverage of the `from` vocabulary; call reversed().coverage() for the other side.
  [[nodiscard]] vocab_coverage coverage() const {
    vocab_coverage c;
    c.from_size = forward_.size();
    c.to_size = backward_.size();
    std::vector<bool> hit(backward_.size(), false);
    for (std::size_t i = 0; i < forward_.size(); ++i) {
      const token_id t = forward_[i];
      if (t == none) continue;
      ++c.mapped;
      switch (kinds_[i]) {
        case piece_kind::text:
          ++c.mapped_text;
          break;
        case piece_kind::byte:
          ++c.mapped_byte;
          break;
        case piece_kind::special:
          ++c.mapped_special;
          break;
      }
      const auto u = static_cast<std::size_t>(t);
      if (!hit[u]) {
        hit[u] = true;
        ++c.reached;
      }
      if (backward_[u] == static_cast<token_id>(i)) ++c.round_trips;
    }
    return c;
  }

 private:
  // For each token of one vocabulary, the tokens of the other that spell it: ids
  // [start[i], start[i + 1]).
  struct spellings {
    std::vector<std::size_t> start;
    std::vector<token_id> ids;
    [[nodiscard]] std::span<const token_id> of(token_id id) const noexcept {
      if (id < 0 || static_cast<std::size_t>(id) + 1 >= start.size()) return {};
      const auto i = static_cast<std::size_t>(id);
      return std::span<const token_id>(ids).subspan(start[i], start[i + 1] - start[i]);
    }
  };

  // One vocabulary as read from its source, with the indices used to match the other.
  struct side {
    std::vector<std::string> text;  // normalised text (empty: no match possible)
    std::vector<piece_kind> kinds;
    std::vector<int> byte;  // the byte of a byte token, else -1
    std::unordered_map<std::string, token_id> text_index, special_index;
    std::array<token_id, 256> byte_index{};
    std::size_t longest = 0;  // bytes of the longest normalised text piece

    template <class Src>
    errc read(std::size_t n, Src& src, piece_style style) {
      text.resize(n);
      kinds.resize(n);
      byte.assign(n, -1);
      byte_index.fill(none);
      std::string norm;
      for (std::size_t i = 0; i < n; ++i) {
        const auto id = static_cast<token_id>(i);
        const result<token_piece> p = src(id);
        if (!p) return p.error();
        kinds[i] = p->kind;
        switch (p->kind) {
          case piece_kind::special:
            text[i].assign(p->text);
            special_index.emplace(text[i], id);  // keeps the lowest id
            break;
          case piece_kind::byte: {
            const int b = detail::parse_byte_piece(p->text);
            if (b < 0) break;  // unreadable: no counterpart
            byte[i] = b;
            text[i].assign(1, static_cast<char>(b));
            if (byte_index[static_cast<std::size_t>(b)] == none)
              byte_index[static_cast<std::size_t>(b)] = id;
            break;
          }
          case piece_kind::text:
            if (normalize_piece(style, p->text, norm) && !norm.empty()) {
              text[i] = norm;
              text_index.emplace(norm, id);
              longest = std::max(longest, norm.size());
            }
            break;
        }
      }
      return errc::ok;
    }

    // The token of this side matching token i of `o`, or none.
    [[nodiscard]] token_id match(const side& o, std::size_t i) const {
      const std::string& t = o.text[i];
      if (t.empty()) return none;
      const auto find = [](const auto& idx, const std::string& key) {
        const auto it = idx.find(key);
        return it == idx.end() ? none : it->second;
      };
      switch (o.kinds[i]) {
        case piece_kind::special:
          return find(special_index, t);
        case piece_kind::byte: {
          const token_id b = byte_index[static_cast<std::size_t>(o.byte[i])];
          return b != none ? b : find(text_index, t);
        }
        case piece_kind::text: {
          const token_id r = find(text_index, t);
          if (r != none || t.size() != 1) return r;
          return byte_index[static_cast<unsigned char>(t[0])];
        }
      }
      return none;
    }

    [[nodiscard]] std::vector<token_id> match_all(const side& o) const {
      std::vector<token_id> out(o.text.size(), none);
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = match(o, i);
      return out;
    }

    // Spellings of every token of `o` in this side's tokens: its match alone, else a
    // greedy longest-piece split of its text (byte tokens for what no piece covers).
    [[nodiscard]] spellings spell_all(const side& o, const std::vector<token_id>& matched) const {
      spellings sp;
      sp.start.reserve(o.text.size() + 1);
      sp.start.push_back(0);
      std::string key;
      for (std::size_t i = 0; i < o.text.size(); ++i) {
        const std::size_t mark = sp.ids.size();
        const std::string& t = o.text[i];
        if (matched[i] != none) {
          sp.ids.push_back(matched[i]);
        } else if (o.kinds[i] != piece_kind::special) {
          for (std::size_t p = 0; p < t.size();) {
            token_id hit = none;
            std::size_t len = std::min(longest, t.size() - p);
            for (; len > 0; --len) {
              key.assign(t, p, len);
              if (const auto it = text_index.find(key); it != text_index.end()) {
                hit = it->second;
                break;
              }
            }
            if (hit == none) {
              len = 1;
              hit = byte_index[static_cast<unsigned char>(t[p])];
            }
            if (hit == none) {
              sp.ids.resize(mark);  // `to` cannot spell it
              break;
            }
            sp.ids.push_back(hit);
            p += len;
          }
        }
        sp.start.push_back(sp.ids.size());
      }
      return sp;
    }
  };

  std::vector<token_id> forward_;   // from id -> to id or none
  std::vector<token_id> backward_;  // to id -> from id or none
  std::vector<piece_kind> kinds_;   // kind of each from token
  std::vector<piece_kind> to_kinds_;
  spellings spell_;       // from token -> to tokens
  spellings back_spell_;  // to token -> from tokens
};

namespace detail {

/// Rolls back the `n` tokens a wrapper just appended to `m` after a later step failed with
/// `e`: returns `e` when rewound, out_of_sync when `m` cannot rewind or the rewind fails.
template <class M>
[[nodiscard]] errc undo_append(M& m, std::size_t n, errc e) {
  if constexpr (Rewindable<M>) {
    if (ok(m.rewind(n))) return e;
  }
  (void)n;
  return errc::out_of_sync;
}

}  // namespace detail

/// What a mapped_model does with a token that has no counterpart in the model's vocabulary.
enum class unmapped_token : unsigned char {
  /// Feed the model the token's spelling (vocab_map::spelling), so the model follows the
  /// text; a token the model's vocabulary cannot spell at all (a special token without a
  /// counterpart) is skipped. The presented context then counts one token for each token
  /// appended, whatever the model holds.
  spell,
  /// Refuse it: append returns vocab_mismatch.
  fail,
};

/// Options of a mapped_model.
struct mapped_model_options {
  unmapped_token unmapped = unmapped_token::spell;  ///< see unmapped_token
};

/// A LanguageModel presented in another vocabulary through a vocab_map whose `from` side
/// is the presented vocabulary and whose `to` side is the model's: appended ids are
/// mapped to the model's, and logits are mapped back (tokens without a counterpart are
/// -inf, so no decoder picks them). Rewind and score are offered when the model has them.
/// Use it to put a part with another tokenizer into a combined_model, or a drafter with
/// another tokenizer in front of a speculative target. A token without a counterpart is
/// fed as its spelling in the model's tokens by default (unmapped_token::spell): a mapped
/// drafter then follows a target past such a token (that step is a plain target step,
/// since the draft never proposes it) and drafts again right after; with
/// unmapped_token::fail it cannot be appended (vocab_mismatch).
///
/// size() counts presented tokens; the model may hold more (spellings) or fewer (skipped
/// tokens); rewind(n) drops what the last n presented tokens fed it.
///
/// Ownership: the model and the map are the caller's and must outlive this object. Owns
/// its logits, id and length buffers; append/score of up to reserve()d tokens (of context
/// and of a call) never allocate. Move-only.
template <LanguageModel M>
class mapped_model {
 public:
  /// Wraps `model` with `map`. Errors: vocab_mismatch (map.to_size() !=
  /// model.vocab_size(); both sizes in `*info` when not null). When the model already
  /// holds a context, its tokens count as presented tokens one for one and its logits are
  /// mapped now (size_mismatch if they have the wrong size).
  [[nodiscard]] static result<mapped_model> create(M& model, const vocab_map& map,
                                                   mapped_model_options options,
                                                   error_info* info = nullptr) {
    if (const auto mv = static_cast<std::size_t>(model.vocab_size()); map.to_size() != mv)
      return detail::fail(info, errc::vocab_mismatch,
                          "map's target vocabulary %zu, model vocabulary %zu", map.to_size(), mv);
    mapped_model m(model, map, options);
    if (model.size() > 0) {
      TANDEM_TRY(map.map_logits(model.logits(), m.logits_));
      m.fed_.assign(static_cast<std::size_t>(model.size()), 1);
    }
    return m;
  }
  /// create(model, map, {}, info): tokens without a counterpart are spelled.
  [[nodiscard]] static result<mapped_model> create(M& model, const vocab_map& map,
                                                   error_info* info = nullptr) {
    return create(model, map, mapped_model_options{}, info);
  }

  ///@{
  /// Moves the references to the model and the map, and the buffers; a moved-from object
  /// may only be destroyed or assigned to.
  mapped_model(mapped_model&&) noexcept = default;
  mapped_model& operator=(mapped_model&&) noexcept = default;
  ///@}
  mapped_model(const mapped_model&) = delete;
  mapped_model& operator=(const mapped_model&) = delete;
  ~mapped_model() = default;

  /// The presented vocabulary's size (the map's `from` side).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return map_->from_size(); }
  /// Presented tokens in the context (see the class comment).
  [[nodiscard]] std::size_t size() const noexcept { return fed_.size(); }
  /// The model's context length, or SIZE_MAX.
  [[nodiscard]] std::size_t context_length() const noexcept { return context_length_of(*model_); }
  /// The model's next-token logits in the presented vocabulary (-inf: no counterpart).
  [[nodiscard]] std::span<const float> logits() const noexcept { return logits_; }
  /// The wrapped model.
  [[nodiscard]] M& model() const noexcept { return *model_; }
  /// The details of the last failed append or score: for `vocab_mismatch`, the first
  /// token without a counterpart. Left as it was by a successful call.
  [[nodiscard]] const error_info& last_error() const noexcept { return error_; }

  /// Reserves id and row buffers for appends/scores of up to `tokens` tokens (spellings
  /// longer than one token may still grow them) and the record of the presented context
  /// for up to `context` tokens (at least size() + tokens).
  void reserve(std::size_t tokens, std::size_t context = 0) {
    ids_.reserve(tokens);
    ends_.reserve(tokens);
    fed_.reserve(std::max(context, fed_.size() + tokens));
    rows_.reserve(tokens * map_->to_size());
  }

  /// Maps `t` and appends it to the model (tokens without a counterpart as the options
  /// say). Errors, leaving everything as before: empty_input, invalid_token (an id outside
  /// the presented vocabulary), vocab_mismatch (unmapped_token::fail and a token without
  /// a counterpart; or nothing to feed an empty model), the model's append error,
  /// size_mismatch (the model's logits have the wrong size; the append is rolled back
  /// when the model can rewind, else the model keeps the tokens and this returns
  /// out_of_sync).
  [[nodiscard]] errc append(std::span<const token_id> t) {
    TANDEM_TRY(translate(t));
    if (!ids_.empty()) {
      TANDEM_TRY(model_->append(std::span<const token_id>(ids_)));
      const errc e = map_->map_logits(model_->logits(), logits_);
      if (!ok(e)) return undo(ids_.size(), e);
    }
    push_fed(t.size());
    return errc::ok;
  }

  /// Drops the last `n` presented tokens: rewinds the model by what they fed it (the
  /// model's rewind and its errors; rewind_out_of_range for n > size()). logits() is
  /// unspecified afterwards until the next append.
  [[nodiscard]] errc rewind(std::size_t n) requires Rewindable<M> {
    if (n > fed_.size()) return errc::rewind_out_of_range;
    std::size_t inner = 0;
    for (std::size_t i = fed_.size() - n; i < fed_.size(); ++i) inner += fed_[i];
    if (inner > 0) TANDEM_TRY(model_->rewind(inner));
    fed_.resize(fed_.size() - n);
    return errc::ok;
  }

  /// Scores `t` (mapped) with the model and maps every row: a presented token's row is
  /// the model's row after the last token it fed (the previous row for a skipped token).
  /// Errors: those of append, size_mismatch (rows.size() != t.size() * vocab_size()), the
  /// model's score error.
  [[nodiscard]] errc score(std::span<const token_id> t, std::span<float> rows) requires Scoring<M> {
    const std::size_t v = vocab_size(), u = map_->to_size();
    if (rows.size() != t.size() * v) return errc::size_mismatch;
    TANDEM_TRY(translate(t));
    const std::size_t k = ids_.size();
    if (k > 0) {
      if (rows_.size() < k * u) rows_.resize(k * u);
      const std::span<float> inner(rows_.data(), k * u);
      TANDEM_TRY(model_->score(std::span<const token_id>(ids_), inner));
      for (std::size_t i = 0; i < t.size(); ++i) {
        const std::span<float> row = rows.subspan(i * v, v);
        const errc e = ends_[i] == 0
                           ? copy_row(i == 0 ? logits_ : rows.subspan((i - 1) * v, v), row)
                           : map_->map_logits(inner.subspan((ends_[i] - 1) * u, u), row);
        if (!ok(e)) return undo(k, e);
      }
    } else {
      for (std::size_t i = 0; i < t.size(); ++i) (void)copy_row(logits_, rows.subspan(i * v, v));
    }
    std::memcpy(logits_.data(), rows.data() + (t.size() - 1) * v, v * sizeof(float));
    push_fed(t.size());
    return errc::ok;
  }

 private:
  mapped_model(M& model, const vocab_map& map, mapped_model_options options)
      : model_(&model),
        map_(&map),
        options_(options),
        logits_(map.from_size(), -std::numeric_limits<float>::infinity()) {}

  static errc copy_row(std::span<const float> from, std::span<float> to) noexcept {
    std::memcpy(to.data(), from.data(), to.size() * sizeof(float));
    return errc::ok;
  }

  // Records what each of the last `n` translated tokens fed the model.
  void push_fed(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      fed_.push_back(static_cast<std::uint32_t>(ends_[i] - (i == 0 ? 0 : ends_[i - 1])));
  }

  // Fills ids_ with the model's tokens for `t` and ends_[i] with the count of ids_ after
  // t[i] (0 while t[0..i] fed nothing).
  errc translate(std::span<const token_id> t) {
    if (t.empty()) return errc::empty_input;
    ids_.clear();
    ends_.clear();
    for (const token_id x : t) {
      if (x < 0 || static_cast<std::size_t>(x) >= map_->from_size()) return errc::invalid_token;
      const std::span<const token_id> sp = map_->spelling(x);
      const bool direct = sp.size() == 1 && map_->map_token(x).has_value();
      if (!direct && options_.unmapped == unmapped_token::fail)
        return detail::fail(&error_, errc::vocab_mismatch,
                            "token %d of vocabulary %zu has no counterpart in the wrapped "
                            "model's vocabulary %zu",
                            static_cast<int>(x), map_->from_size(), map_->to_size());
      ids_.insert(ids_.end(), sp.begin(), sp.end());
      ends_.push_back(ids_.size());
    }
    if (ids_.empty() && model_->size() == 0)
      return detail::fail(&error_, errc::vocab_mismatch,
                          "nothing of the %zu tokens appended can be fed to an empty model",
                          t.size());
    return errc::ok;
  }

  errc undo(std::size_t n, errc e) { return detail::undo_append(*model_, n, e); }

  M* model_;
  const vocab_map* map_;
  mapped_model_options options_;
  std::vector<float> logits_;
  std::vector<token_id> ids_;
  std::vector<std::size_t> ends_;   // per appended token: ids_ count after it
  std::vector<std::uint32_t> fed_;  // per presented token: model tokens it fed
  std::vector<float> rows_;
  error_info error_{};  // details of the last failed append or score
};

/// How two vocabularies that share a tokenizer line up: the same pieces at the same ids
/// for [0, shared), and only padding after that in the larger one.
struct vocab_padding {
  std::size_t shared = 0;  ///< ids [0, shared) are the same token in both
  std::size_t a_size = 0;  ///< size of vocabulary `a`
  std::size_t b_size = 0;  ///< size of vocabulary `b`
  /// True when the sizes differ (one vocabulary is padded).
  [[nodiscard]] bool padded() const noexcept { return a_size != b_size; }
};

/// Checks that vocabularies `a` and `b` (piece sources over [0, a_size) and [0, b_size))
/// come from the same tokenizer and differ at most by padding, comparing token texts and
/// kinds, not only sizes: ids below the smaller size must have the same raw piece and
/// kind, and every id of the larger vocabulary beyond it must be special (a padding or
/// unused entry, as llama.cpp's converters write `[PAD151665]`...). Such a pair (e.g.
/// Qwen2.5 0.5B with 151,936 logits and 7B with 152,064) can be used together through
/// padded_model. Errors, details in `*info` when given: empty_input (a size of 0),
/// vocab_mismatch (the first differing id and both pieces, or the first non-padding
/// extra token: the tokenizers really differ; use a vocab_map or text_drafter), or a
/// piece source's error.
template <PieceSource A, PieceSource B>
[[nodiscard]] result<vocab_padding> match_padded_vocabularies(std::size_t a_size, A&& a,
                                                              std::size_t b_size, B&& b,
                                                              error_info* info = nullptr) {
  if (a_size == 0 || b_size == 0)
    return detail::fail(info, errc::empty_input, "vocabulary sizes %zu and %zu", a_size, b_size);
  const std::size_t shared = std::min(a_size, b_size);
  std::string pa;  // a's piece, kept while b's source is called
  for (std::size_t i = 0; i < shared; ++i) {
    const auto id = static_cast<token_id>(i);
    const result<token_piece> x = a(id);
    if (!x) return x.error();
    pa.assign(x->text);
    const piece_kind ka = x->kind;
    const result<token_piece> y = b(id);
    if (!y) return y.error();
    if (pa != y->text || ka != y->kind)
      return detail::fail(info, errc::vocab_mismatch,
                          "different tokenizers: token %zu is \"%.64s\" in vocabulary a (%zu "
                          "tokens) and \"%.64s\" in vocabulary b (%zu tokens)",
                          i, pa.c_str(), a_size, std::string(y->text).c_str(), b_size);
  }
  const bool a_larger = a_size > b_size;
  for (std::size_t i = shared; i < std::max(a_size, b_size); ++i) {
    const auto id = static_cast<token_id>(i);
    const result<token_piece> x = a_larger ? a(id) : b(id);
    if (!x) return x.error();
    if (x->kind != piece_kind::special)
      return detail::fail(info, errc::vocab_mismatch,
                          "different tokenizers: vocabulary %c has %zu tokens, the other %zu, and "
                          "its token %zu (\"%.64s\") is not padding",
                          a_larger ? 'a' : 'b', std::max(a_size, b_size), shared, i,
                          std::string(x->text).c_str());
  }
  return vocab_padding{shared, a_size, b_size};
}

/// A LanguageModel presented with another vocabulary size, for a pair whose vocabularies
/// differ only by padding (see match_padded_vocabularies): logits of ids [0, shared) are
/// the model's, every other id's is -inf, so padding is never sampled whichever side is
/// larger. Appended ids must lie below both sizes (the model can take them). Rewind and
/// score are offered when the model has them. Borrows the model (it must outlive this
/// object); owns its logits and row buffers: append/score of up to reserve()d tokens never
/// allocate. Move-only.
template <LanguageModel M>
class padded_model {
 public:
  /// Presents `model` with `vocab_size` logits, of which the first `shared` are the
  /// model's. Errors: invalid_argument (shared 0 or above either size; the sizes in
  /// `*info` when given), size_mismatch (the model holds a context whose logits have the
  /// wrong size).
  [[nodiscard]] static result<padded_model> create(M& model, std::size_t vocab_size,
                                                   std::size_t shared, error_info* info = nullptr) {
    const auto mv = static_cast<std::size_t>(model.vocab_size());
    if (shared == 0 || shared > vocab_size || shared > mv)
      return detail::fail(info, errc::invalid_argument,
                          "padded_model: shared %zu must lie in [1, min(%zu, %zu)]", shared,
                          vocab_size, mv);
    padded_model p(model, vocab_size, shared);
    if (model.size() > 0) TANDEM_TRY(p.refresh(model.logits(), p.logits_));
    return p;
  }

  ///@{
  /// Moves the reference and the buffers; a moved-from object may only be destroyed or
  /// assigned to.
  padded_model(padded_model&&) noexcept = default;
  padded_model& operator=(padded_model&&) noexcept = default;
  ///@}
  padded_model(const padded_model&) = delete;
  padded_model& operator=(const padded_model&) = delete;
  ~padded_model() = default;

  /// The presented vocabulary size.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return logits_.size(); }
  /// Tokens in the model's context.
  [[nodiscard]] std::size_t size() const noexcept {
    return static_cast<std::size_t>(model_->size());
  }
  /// The model's context length, or SIZE_MAX.
  [[nodiscard]] std::size_t context_length() const noexcept { return context_length_of(*model_); }
  /// The logits: the model's for [0, shared), -inf after.
  [[nodiscard]] std::span<const float> logits() const noexcept { return logits_; }
  /// The wrapped model.
  [[nodiscard]] M& model() const noexcept { return *model_; }

  /// Sizes the row buffer for score() calls of up to `tokens` tokens.
  void reserve(std::size_t tokens) {
    rows_.reserve(tokens * static_cast<std::size_t>(model_->vocab_size()));
  }

  /// Appends `t` to the model. Errors, leaving everything as before: empty_input,
  /// invalid_token (an id outside [0, min(vocab_size(), the model's size))), the model's
  /// append error, size_mismatch (the model's logits have the wrong size; rolled back when
  /// the model can rewind, else out_of_sync).
  [[nodiscard]] errc append(std::span<const token_id> t) {
    TANDEM_TRY(check(t));
    TANDEM_TRY(model_->append(t));
    const errc e = refresh(model_->logits(), logits_);
    if (!ok(e)) return undo(t.size(), e);
    return errc::ok;
  }

  /// The model's rewind and its errors. logits() is unspecified afterwards until the
  /// next append.
  [[nodiscard]] errc rewind(std::size_t n) requires Rewindable<M> { return model_->rewind(n); }

  /// Scores `t` with the model and presents every row. Errors: those of append,
  /// size_mismatch (rows.size() != t.size() * vocab_size()), the model's score error.
  [[nodiscard]] errc score(std::span<const token_id> t, std::span<float> rows) requires Scoring<M> {
    const std::size_t v = vocab_size(), u = static_cast<std::size_t>(model_->vocab_size());
    if (rows.size() != t.size() * v) return errc::size_mismatch;
    TANDEM_TRY(check(t));
    if (rows_.size() < t.size() * u) rows_.resize(t.size() * u);
    const std::span<float> inner(rows_.data(), t.size() * u);
    TANDEM_TRY(model_->score(t, inner));
    for (std::size_t i = 0; i < t.size(); ++i)
      (void)refresh(inner.subspan(i * u, u), rows.subspan(i * v, v));
    std::memcpy(logits_.data(), rows.data() + (t.size() - 1) * v, v * sizeof(float));
    return errc::ok;
  }

 private:
  padded_model(M& model, std::size_t vocab_size, std::size_t shared)
      : model_(&model),
        shared_(shared),
        logits_(vocab_size, -std::numeric_limits<float>::infinity()) {}

  [[nodiscard]] errc check(std::span<const token_id> t) const noexcept {
    if (t.empty()) return errc::empty_input;
    const std::size_t lim =
        std::min(logits_.size(), static_cast<std::size_t>(model_->vocab_size()));
    for (const token_id x : t)
      if (x < 0 || static_cast<std::size_t>(x) >= lim) return errc::invalid_token;
    return errc::ok;
  }

  // Copies the shared part of `in` (the model's logits) to `out` and masks the rest.
  [[nodiscard]] errc refresh(std::span<const float> in, std::span<float> out) const noexcept {
    if (in.size() != static_cast<std::size_t>(model_->vocab_size())) return errc::size_mismatch;
    std::memcpy(out.data(), in.data(), shared_ * sizeof(float));
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(shared_), out.end(),
              -std::numeric_limits<float>::infinity());
    return errc::ok;
  }

  errc undo(std::size_t n, errc e) { return detail::undo_append(*model_, n, e); }

  M* model_;
  std::size_t shared_;
  std::vector<float> logits_;
  std::vector<float> rows_;
};

}  // namespace tandem::inline v0
