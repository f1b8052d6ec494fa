// tandem: streaming-safe text. Releases generated text only once it is final: never half
// a UTF-8 character, never text that could still turn into a stop string.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "tandem/core/config.hpp"
#include "tandem/core/errc.hpp"

namespace tandem::inline v0 {

/// Number of bytes at the end of `text` that form the start of a UTF-8 character whose
/// remaining bytes have not arrived yet (0 to 3). Bytes that can never become a valid
/// character (a stray continuation byte, 0xC0, 0xC1, 0xF5..0xFF) count as complete, so
/// malformed text is never held back forever.
[[nodiscard]] constexpr std::size_t utf8_incomplete_suffix(std::string_view text) noexcept {
  const std::size_t n = text.size() < 3 ? text.size() : 3;
  for (std::size_t k = 1; k <= n; ++k) {
    const auto c = static_cast<unsigned char>(text[text.size() - k]);
    if ((c & 0xC0u) == 0x80u) continue;  // continuation byte: look further back
    std::size_t need = 1;
    if (c >= 0xF5u)
      need = 1;
    else if (c >= 0xF0u)
      need = 4;
    else if (c >= 0xE0u)
      need = 3;
    else if (c >= 0xC2u)
      need = 2;
    return need > k ? k : 0;
  }
  return 0;
}

/// What one step of a text_stream produced.
struct text_step {
  /// Text that became final in this step: safe to show. A view into the stream's text
  /// buffer, valid until that buffer is next modified.
  std::string_view released{};
  /// A stop string was found: the text now ends just before it and the stream is over.
  bool stopped = false;
};

/// Incremental stop-string detection and UTF-8-safe release over a growing text buffer.
/// The generation loop and the backends feed it one token's text at a time and hand
/// only `released` text to a streaming callback.
///
/// Held back at each step: an incomplete trailing UTF-8 character and the longest
/// suffix that is a proper prefix of some stop string. When a stop string appears, the
/// text is truncated at its first byte (the earliest match wins) and the stream stops.
/// The concatenation of everything released, flush() included, equals the final text.
///
/// Owns nothing: it refers to the caller's text buffer and stop strings, which must
/// outlive it (or the next start()). Never allocates, except through the buffer's own
/// growth in push(). Not thread-safe; one stream per generation.
class text_stream {
 public:
  /// A stream not yet started: call start() before push().
  text_stream() = default;

  /// Starts a stream over `text`, to which the stream (or the caller) appends. Text
  /// already in the buffer counts as released and is never searched for stop strings.
  /// Returns `invalid_argument` when a stop string is empty (the stream is then not
  /// started); `errc::ok` otherwise.
  [[nodiscard]] errc start(std::string& text,
                           std::span<const std::string_view> stop_strings = {}) noexcept {
    for (std::string_view s : stop_strings) {
      if (s.empty()) return errc::invalid_argument;
    }
    text_ = &text;
    stops_ = stop_strings;
    released_ = text.size();
    scanned_ = text.size();
    stopped_ = false;
    return errc::ok;
  }

  /// Appends `piece` to the text, then behaves as update(). Precondition: started and
  /// not stopped.
  text_step push(std::string_view piece) {
    TANDEM_ASSERT(text_ != nullptr && !stopped_, "text_stream::push on a stopped stream");
    text_->append(piece);
    return update();
  }

  /// Examines text the caller appended to the buffer directly since the last step (for
  /// example through Tokenizer::piece), truncates it at a stop string if one appeared,
  /// and releases what became final. Precondition: started and not stopped.
  text_step update() noexcept {
    TANDEM_ASSERT(text_ != nullptr && !stopped_, "text_stream::update on a stopped stream");
    std::string& text = *text_;
    const std::string_view view = text;
    const std::size_t size = view.size();
    const std::size_t from_released = released_;
    if (size == scanned_) return {};

    // A new match must end in the new bytes, so it starts at most len - 1 bytes earlier.
    std::size_t stop_at = std::string_view::npos;
    for (std::string_view s : stops_) {
      std::size_t from = scanned_ >= s.size() - 1 ? scanned_ - (s.size() - 1) : 0;
      if (from < released_) from = released_;
      const std::size_t pos = view.find(s, from);
      if (pos < stop_at) stop_at = pos;
    }
    if (stop_at != std::string_view::npos) {
      TANDEM_ASSERT(stop_at >= released_, "text_stream released part of a stop string");
      text.resize(stop_at);
      released_ = stop_at;
      scanned_ = stop_at;
      stopped_ = true;
      return {std::string_view(text).substr(from_released, stop_at - from_released), true};
    }

    std::size_t hold = utf8_incomplete_suffix(view.substr(released_));
    const std::size_t avail = size - released_;
    for (std::string_view s : stops_) {
      for (std::size_t k = (s.size() - 1 < avail ? s.size() - 1 : avail); k > hold; --k) {
        if (view.ends_with(s.substr(0, k))) {
          hold = k;
          break;
        }
      }
    }
    scanned_ = size;
    released_ = size - hold;
    return {view.substr(from_released, released_ - from_released), false};
  }

  /// Ends the stream: examines unexamined text as update() does, then releases all that
  /// is still held (a possible stop-string prefix, even an incomplete UTF-8 character:
  /// the text is final). Returns everything released by this call, as one view.
  std::string_view flush() noexcept {
    TANDEM_ASSERT(text_ != nullptr, "text_stream::flush before start");
    const std::size_t from = released_;
    if (!stopped_) {
      (void)update();
      released_ = text_->size();
      scanned_ = released_;
    }
    return std::string_view(*text_).substr(from, released_ - from);
  }

  /// True once a stop string was found.
  [[nodiscard]] bool stopped() const noexcept { return stopped_; }
  /// Bytes of the text released so far (the buffer's size at start() included).
  [[nodiscard]] std::size_t released_size() const noexcept { return released_; }
  /// Bytes examined but held back.
  [[nodiscard]] std::size_t held() const noexcept { return scanned_ - released_; }

 private:
  std::string* text_ = nullptr;
  std::span<const std::string_view> stops_{};
  std::size_t released_ = 0;
  std::size_t scanned_ = 0;
  bool stopped_ = false;
};

}  // namespace tandem::inline v0
