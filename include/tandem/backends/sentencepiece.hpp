// tandem: sentencepiece tokenizer adapter (opt-in backend; link tandem::sentencepiece).
// Wraps sentencepiece::SentencePieceProcessor as a tandem::Tokenizer whose functions
// return errc instead of sentencepiece's util::Status. Not included by tandem.hpp.
#pragma once

#include <sentencepiece_processor.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/core/concepts.hpp"
#include "tandem/core/config.hpp"
#include "tandem/core/detail/bytes.hpp"
#include "tandem/core/errc.hpp"
#include "tandem/core/error_info.hpp"
#include "tandem/core/result.hpp"
#include "tandem/core/stream_decoder.hpp"
#include "tandem/core/types.hpp"

namespace tandem::inline v0 {

namespace detail {

/// Maps a failed sentencepiece status to an errc; `fallback` for codes with no closer match.
[[nodiscard]] inline errc from_spm_status(const sentencepiece::util::Status& s,
                                          errc fallback) noexcept {
  using code = sentencepiece::util::StatusCode;
  if (s.ok()) return errc::ok;
  switch (s.code()) {
    case code::kInvalidArgument:
      return errc::invalid_argument;
    case code::kOutOfRange:
      return errc::invalid_token;
    case code::kResourceExhausted:
      return errc::out_of_memory;
    case code::kUnimplemented:
      return errc::unsupported;
    case code::kCancelled:
      return errc::cancelled;
    case code::kDeadlineExceeded:
      return errc::timeout;
    default:
      return fallback;
  }
}

/// The word-boundary mark U+2581 that sentencepiece writes for a space.
inline constexpr std::string_view spm_space_mark = "\xE2\x96\x81";

/// Appends `piece` with every U+2581 turned into a space.
inline void append_spm_text(std::string_view piece, std::string& out) {
  std::size_t pos = 0;
  for (;;) {
    const std::size_t mark = piece.find(spm_space_mark, pos);
    out.append(piece.substr(pos, mark == std::string_view::npos ? piece.size() - pos : mark - pos));
    if (mark == std::string_view::npos) return;
    out.push_back(' ');
    pos = mark + spm_space_mark.size();
  }
}

}  // namespace detail

/// A sentencepiece model (BPE or unigram) as a tandem::Tokenizer.
///
/// Text conventions follow sentencepiece's own decoder: a piece's U+2581 is a space; a
/// byte-fallback token `<0xNN>` is the raw byte NN (so one character may span several
/// tokens: use stream_decoder for streaming); control tokens (`<s>`, `</s>`) are empty; the
/// unknown token is the model's unknown surface (`" \u2047 "` by default); the first visible token
/// of a text loses the leading space of the model's dummy prefix (see first_piece).
///
/// Ownership: owns its processor; move-only (a moved-from tokenizer may only be destroyed
/// or assigned to). All const functions may be called from several threads at once.
/// Models whose text is not the concatenation of their pieces (denormalization rules,
/// suffix whitespace) are not supported: a probe at load rejects those it detects with
/// `unsupported`.
class sentencepiece_tokenizer {
 public:
  /// Loads a model file written by spm_train. Errors: `file_not_found` (cannot be opened),
  /// `invalid_argument` (a directory), `io_error` (read failed), and those of `from_bytes`;
  /// details (the path first) in `*info` when not null.
  [[nodiscard]] static result<sentencepiece_tokenizer> load(std::string_view path,
                                                            error_info* info = nullptr) {
    return detail::parse_file(
        path, info, [](std::span<const std::byte> b, error_info* i) { return from_bytes(b, i); });
  }

  /// Loads a model from the bytes of a model file (a serialized ModelProto), copied.
  /// Errors, with details in `*info` when not null: `corrupt_file` (empty or not a
  /// sentencepiece model; the details carry sentencepiece's own message), `unsupported`,
  /// `out_of_memory`.
  [[nodiscard]] static result<sentencepiece_tokenizer> from_bytes(std::span<const std::byte> bytes,
                                                                  error_info* info = nullptr) {
    if (bytes.empty()) return detail::fail(info, errc::corrupt_file, "empty sentencepiece model");
    std::unique_ptr<sentencepiece::SentencePieceProcessor> sp(
        new (std::nothrow) sentencepiece::SentencePieceProcessor());
    if (!sp) return detail::fail(info, errc::out_of_memory);
    // Any failure here means the bytes are not a usable model.
    if (const auto status = sp->LoadFromSerializedProto(detail::as_text(bytes)); !status.ok())
      return detail::fail(info, errc::corrupt_file, "not a sentencepiece model (%s)",
                          status.ToString().c_str());
    if (sp->GetPieceSize() <= 0)
      return detail::fail(info, errc::corrupt_file, "sentencepiece model without pieces");
    sentencepiece_tokenizer t(std::move(sp));
    if (const errc e = t.init(); e != errc::ok)
      return detail::fail(info, e,
                          e == errc::unsupported
                              ? "sentencepiece model whose text is not the concatenation of its "
                                "pieces (denormalization or suffix whitespace)"
                              : "sentencepiece model: inconsistent pieces");
    return t;
  }

  ///@{
  /// Moves the processor and the token tables; a moved-from tokenizer may only be
  /// destroyed or assigned to.
  sentencepiece_tokenizer(sentencepiece_tokenizer&&) noexcept = default;
  sentencepiece_tokenizer& operator=(sentencepiece_tokenizer&&) noexcept = default;
  ///@}
  sentencepiece_tokenizer(const sentencepiece_tokenizer&) = delete;
  sentencepiece_tokenizer& operator=(const sentencepiece_tokenizer&) = delete;
  ~sentencepiece_tokenizer() = default;

  /// Number of pieces; valid ids are [0, vocab_size()).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return kinds_.size(); }

  /// True when `id` is in [0, vocab_size()).
  [[nodiscard]] bool contains(token_id id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < kinds_.size();
  }

  /// Appends the ids of `text` to `ids` (no `<s>` or `</s>`: add bos_id()/eos_id() yourself).
  /// Empty text appends nothing. Errors: what sentencepiece reports (`invalid_argument`,
  /// `out_of_memory`, else `parse_error`); `ids` is then unchanged.
  [[nodiscard]] errc encode(std::string_view text, std::vector<token_id>& ids) const {
    std::vector<int> tmp;
    TANDEM_TRY(detail::from_spm_status(sp_->Encode(text, &tmp), errc::parse_error));
    ids.insert(ids.end(), tmp.begin(), tmp.end());
    return errc::ok;
  }

  /// Appends the text of `ids` to `out`, exactly as sentencepiece decodes it: byte tokens
  /// that do not form a well-formed UTF-8 character become U+FFFD, one per byte.
  /// Errors: `invalid_token` (an id outside the vocabulary), or what sentencepiece
  /// reports; `out` is then unchanged.
  [[nodiscard]] errc decode(std::span<const token_id> ids, std::string& out) const {
    for (const token_id id : ids)
      if (!contains(id)) return errc::invalid_token;
    const std::vector<int> tmp(ids.begin(), ids.end());
    std::string text;
    TANDEM_TRY(detail::from_spm_status(sp_->Decode(tmp, &text), errc::invalid_token));
    out.append(text);
    return errc::ok;
  }

  /// Appends the raw text of one token: U+2581 as a space, a byte token as its byte (maybe
  /// part of a multi-byte character), control tokens as nothing. Never allocates once
  /// `out` has room. Errors: `invalid_token`, leaving `out` unchanged.
  [[nodiscard]] errc piece(token_id id, std::string& out) const { return text_of(id, out, false); }

  /// Appends the bytes token `id` adds to a generated text, for output constraints
  /// (`ByteTokenizer`, tandem/constrain): as piece() (U+2581 as a space, a byte token as its
  /// byte), except that control and unknown tokens have no bytes (nothing appended).
  /// Errors: `invalid_token`, leaving `out` unchanged.
  [[nodiscard]] errc token_bytes(token_id id, std::string& out) const {
    if (is_unknown(id)) return errc::ok;
    return text_of(id, out, false);
  }

  /// Like piece(), for a token at the start of a text (before leaves_start() was true):
  /// when the model adds a dummy prefix (or drops leading whitespace), a normal piece's
  /// leading U+2581 gives no space, as in decode(). Errors: `invalid_token`, leaving `out`
  /// unchanged.
  [[nodiscard]] errc first_piece(token_id id, std::string& out) const {
    return text_of(id, out, strip_first_space_);
  }

  /// True when a text is no longer at its start after `id` (see first_piece): false for
  /// control tokens, for a lone U+2581 piece when the model drops all leading whitespace,
  /// and for invalid ids; true otherwise.
  [[nodiscard]] bool leaves_start(token_id id) const noexcept {
    if (!contains(id)) return false;
    switch (kinds_[static_cast<std::size_t>(id)].kind_) {
      case kind::control:
        return false;
      case kind::unknown:
      case kind::byte:
        return true;
      case kind::normal:
        break;
    }
    return !(strip_all_leading_ && sp_->IdToPiece(id) == detail::spm_space_mark);
  }

  /// The model's piece string for `id` as stored (e.g. `"\u2581the"`, `<0xE6>`, `<s>`).
  /// The view lives as long as this tokenizer. Errors: `invalid_token`.
  [[nodiscard]] result<std::string_view> raw_piece(token_id id) const {
    if (!contains(id)) return errc::invalid_token;
    return std::string_view(sp_->IdToPiece(id));
  }

  /// The id of a piece string as stored (e.g. `"\u2581the"`). Errors: `not_found`.
  [[nodiscard]] result<token_id> find_piece(std::string_view raw) const {
    const int id = sp_->PieceToId(raw);
    if (!contains(id) || (id == unk_ && sp_->IdToPiece(id) != raw)) return errc::not_found;
    return token_id{id};
  }

  ///@{
  /// Special token ids (begin and end of sequence, unknown, padding), or -1 when the
  /// model has none.
  [[nodiscard]] token_id bos_id() const noexcept { return bos_; }
  [[nodiscard]] token_id eos_id() const noexcept { return eos_; }
  [[nodiscard]] token_id unk_id() const noexcept { return unk_; }
  [[nodiscard]] token_id pad_id() const noexcept { return pad_; }
  ///@}

  /// True for a byte-fallback token `<0xNN>`; false for other tokens and invalid ids.
  [[nodiscard]] bool is_byte(token_id id) const noexcept {
    return contains(id) && kinds_[static_cast<std::size_t>(id)].kind_ == kind::byte;
  }
  /// True for a control token (`<s>`, `</s>`, `<pad>`, user control symbols); false for other
  /// tokens and invalid ids.
  [[nodiscard]] bool is_control(token_id id) const noexcept {
    return contains(id) && kinds_[static_cast<std::size_t>(id)].kind_ == kind::control;
  }
  /// True for the unknown token; false for other tokens and invalid ids.
  [[nodiscard]] bool is_unknown(token_id id) const noexcept {
    return contains(id) && kinds_[static_cast<std::size_t>(id)].kind_ == kind::unknown;
  }

  /// The wrapped processor, for what this adapter does not expose. Owned by this object.
  [[nodiscard]] const sentencepiece::SentencePieceProcessor& processor() const noexcept {
    return *sp_;
  }

 private:
  enum class kind : std::uint8_t { normal, control, unknown, byte };
  struct entry {
    kind kind_;
    std::uint8_t byte_;
  };

  explicit sentencepiece_tokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp)
      : sp_(std::move(sp)) {}

  // Classifies every piece once, then checks that piece() reproduces the processor's own
  // decoding on a probe text, which rejects models whose output is not the concatenation
  // of their pieces.
  errc init() {
    const auto n = static_cast<std::size_t>(sp_->GetPieceSize());
    if (n > static_cast<std::size_t>(std::numeric_limits<token_id>::max()))
      return errc::unsupported;
    kinds_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const int id = static_cast<int>(i);
      entry& e = kinds_[i];
      e = {kind::normal, 0};
      if (sp_->IsControl(id))
        e.kind_ = kind::control;
      else if (sp_->IsUnknown(id))
        e.kind_ = kind::unknown;
      else if (sp_->IsByte(id)) {
        const std::string& p = sp_->IdToPiece(id);
        unsigned v = 0;
        if (p.size() != 6 || std::sscanf(p.c_str(), "<0x%2X>", &v) != 1) return errc::corrupt_file;
        e = {kind::byte, static_cast<std::uint8_t>(v)};
      }
    }
    const auto special = [&](int id) { return contains(id) ? token_id{id} : token_id{-1}; };
    bos_ = special(sp_->bos_id());
    eos_ = special(sp_->eos_id());
    unk_ = special(sp_->unk_id());
    pad_ = special(sp_->pad_id());
    if (unk_ >= 0 && !ok(detail::from_spm_status(sp_->Decode(std::vector<int>{unk_}, &unk_text_),
                                                 errc::corrupt_file)))
      return errc::corrupt_file;
    // Whether a leading U+2581 of the first piece is dropped: decode one such piece alone.
    // Whether every leading space piece is (models that remove extra whitespace): decode
    // the lone U+2581 piece twice.
    strip_first_space_ = false;
    strip_all_leading_ = false;
    for (std::size_t i = 0; i < n; ++i) {
      const std::string& p = sp_->IdToPiece(static_cast<int>(i));
      if (kinds_[i].kind_ != kind::normal || !p.starts_with(detail::spm_space_mark)) continue;
      std::string text;
      if (!sp_->Decode(std::vector<int>{static_cast<int>(i)}, &text).ok())
        return errc::corrupt_file;
      strip_first_space_ = !text.starts_with(' ');
      break;
    }
    if (const int space = sp_->PieceToId(detail::spm_space_mark);
        strip_first_space_ && contains(space) &&
        kinds_[static_cast<std::size_t>(space)].kind_ == kind::normal &&
        sp_->IdToPiece(space) == detail::spm_space_mark) {
      std::string text;
      if (!sp_->Decode(std::vector<int>{space, space}, &text).ok()) return errc::corrupt_file;
      strip_all_leading_ = text.empty();
    }
    for (const std::string_view probe : {"a b", "ab  cd e", " x y "}) {
      std::vector<int> ids;
      std::string want, got;
      if (!sp_->Encode(probe, &ids).ok() || !sp_->Decode(ids, &want).ok())
        return errc::corrupt_file;
      stream_decoder<sentencepiece_tokenizer> s(*this);
      for (const int id : ids) TANDEM_TRY(s.push(id, got));
      s.flush(got);
      if (got != want) return errc::unsupported;
    }
    return errc::ok;
  }

  errc text_of(token_id id, std::string& out, bool strip_space) const {
    if (!contains(id)) return errc::invalid_token;
    const entry e = kinds_[static_cast<std::size_t>(id)];
    switch (e.kind_) {
      case kind::control:
        return errc::ok;
      case kind::unknown:
        out.append(unk_text_);
        return errc::ok;
      case kind::byte:
        out.push_back(static_cast<char>(e.byte_));
        return errc::ok;
      case kind::normal:
        break;
    }
    std::string_view p = sp_->IdToPiece(id);
    if (strip_space && p.starts_with(detail::spm_space_mark))
      p.remove_prefix(detail::spm_space_mark.size());
    detail::append_spm_text(p, out);
    return errc::ok;
  }

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::vector<entry> kinds_;
  std::string unk_text_;
  token_id bos_ = -1, eos_ = -1, unk_ = -1, pad_ = -1;
  bool strip_first_space_ = false;
  bool strip_all_leading_ = false;
};

static_assert(Tokenizer<sentencepiece_tokenizer>);

}  // namespace tandem::inline v0
