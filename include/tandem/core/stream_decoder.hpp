// tandem: streaming detokenization. Turns token ids, fed one at a time, into text that
// only ever contains complete UTF-8 characters, and whose concatenation equals the text
// the tokenizer's whole-sequence decode would give.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

/// Optional Tokenizer capability: text at the start of a decoded text differs (sentencepiece
/// drops the space that its dummy prefix put before the first word).
/// `first_piece(id, out)` appends the text `id` gives while the text is at its start, with
/// the errors and guarantees of `piece`; `leaves_start(id)` is true when the text is no
/// longer at its start after `id` (false for control tokens such as `<s>`, which add nothing;
/// false for a piece that is only the dropped space when the model drops all leading
/// whitespace). Tokens after that use `piece`.
template <class T>
concept HasFirstPiece = requires(const T& t, token_id id, std::string& out) {
  { t.first_piece(id, out) } -> std::same_as<errc>;
  { t.leaves_start(id) } -> std::convertible_to<bool>;
};

namespace detail {

/// The UTF-8 replacement character U+FFFD, written for every byte that is not part of a
/// complete, well-formed character.
inline constexpr std::string_view utf8_replacement = "\xEF\xBF\xBD";

/// Length (1 to 4) of the well-formed UTF-8 character that starts `s`; 0 when `s` is a
/// proper prefix of a well-formed character (more bytes could complete it); -1 when the
/// first byte cannot start a well-formed character given the bytes present (a stray
/// continuation byte, an overlong form, a surrogate, a code point above U+10FFFF).
/// Well-formed means Unicode's table 3-7. Precondition: `s` is not empty.
[[nodiscard]] constexpr int utf8_char_length(std::string_view s) noexcept {
  TANDEM_ASSERT(!s.empty(), "utf8_char_length of an empty string");
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  int len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF)
    len = 2;
  else if (b0 == 0xE0)
    len = 3, lo = 0xA0;
  else if (b0 == 0xED)
    len = 3, hi = 0x9F;
  else if (b0 >= 0xE1 && b0 <= 0xEF)
    len = 3;
  else if (b0 == 0xF0)
    len = 4, lo = 0x90;
  else if (b0 == 0xF4)
    len = 4, hi = 0x8F;
  else if (b0 >= 0xF1 && b0 <= 0xF3)
    len = 4;
  else
    return -1;
  for (int i = 1; i < len; ++i) {
    if (static_cast<std::size_t>(i) >= s.size()) return 0;
    const auto b = static_cast<unsigned char>(s[static_cast<std::size_t>(i)]);
    if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -1;
  }
  return len;
}

/// Appends to `out` the well-formed characters of `in` unchanged and one U+FFFD for each
/// other byte. When `final` is false, a trailing incomplete character is not written;
/// returns the number of bytes consumed from `in` (all of them when `final`).
inline std::size_t utf8_append_sanitized(std::string_view in, std::string& out, bool final) {
  std::size_t i = 0;
  while (i < in.size()) {
    const int len = utf8_char_length(in.substr(i));
    if (len > 0) {
      out.append(in.substr(i, static_cast<std::size_t>(len)));
      i += static_cast<std::size_t>(len);
    } else if (len < 0 || final) {
      out.append(utf8_replacement);
      ++i;
    } else {
      break;
    }
  }
  return i;
}

}  // namespace detail

/// Streaming detokenizer over any Tokenizer. `push(id, out)` appends to `out` only complete
/// UTF-8 characters, holding back the bytes of a character whose byte-fallback tokens have
/// not all arrived yet; `flush(out)` ends the text. Bytes that cannot form a well-formed
/// character become U+FFFD, one per byte, as soon as that is certain.
///
/// Start of a text: while the text is at its start, a tokenizer with HasFirstPiece renders
/// tokens with `first_piece` and says with `leaves_start` when the start is over, as its
/// whole-sequence decode does.
///
/// For sentencepiece_tokenizer, the concatenation of everything appended between two
/// flushes equals `decode()` of the ids pushed in between.
///
/// Ownership: holds a pointer to the tokenizer, which must outlive the decoder. Allocation:
/// a buffer reserved at construction; pushing allocates only if one token's text exceeds
/// it (a long piece grows it once). Not thread-safe; one decoder per stream.
template <Tokenizer T>
class stream_decoder {
 public:
  /// A decoder at the start of a text, with `reserve_bytes` of buffer reserved.
  explicit stream_decoder(const T& tokenizer, std::size_t reserve_bytes = 256) : tok_(&tokenizer) {
    held_.reserve(reserve_bytes);
  }

  /// Feeds one token and appends to `out` the characters it completes (possibly none).
  /// Errors: `invalid_token` when `id` is outside the tokenizer's vocabulary, or whatever
  /// the tokenizer's `piece` returns; `out` and the decoder are then unchanged.
  [[nodiscard]] errc push(token_id id, std::string& out) {
    const std::size_t before = held_.size();
    errc e = errc::ok;
    if constexpr (HasFirstPiece<T>) {
      if (at_start_)
        e = tok_->first_piece(id, held_);
      else
        e = tok_->piece(id, held_);
    } else {
      e = tok_->piece(id, held_);
    }
    if (e != errc::ok) {
      held_.resize(before);
      return e;
    }
    if constexpr (HasFirstPiece<T>) {
      if (at_start_ && tok_->leaves_start(id)) at_start_ = false;
    } else {
      at_start_ = false;
    }
    held_.erase(0, detail::utf8_append_sanitized(held_, out, false));
    return errc::ok;
  }

  /// Ends the text: appends one U+FFFD per byte still held (a character cut off by the end
  /// of the stream) and returns the decoder to the start of a new text. Never fails.
  void flush(std::string& out) {
    (void)detail::utf8_append_sanitized(held_, out, true);
    reset();
  }

  /// Drops the held bytes and returns to the start of a new text, writing nothing.
  void reset() noexcept {
    held_.clear();
    at_start_ = true;
  }

  /// Number of bytes held back: an incomplete UTF-8 character (0 to 3 bytes).
  [[nodiscard]] std::size_t held_bytes() const noexcept { return held_.size(); }

  /// True while the current text is at its start (see the class comment).
  [[nodiscard]] bool at_start() const noexcept { return at_start_; }

 private:
  const T* tok_;
  std::string held_;
  bool at_start_ = true;
};

}  // namespace tandem::inline v0
