// tandem: hexadecimal digits, shared by the text readers (the regex parser's \xHH and
// \uHHHH, the JSON reader's \uHHHH).
#pragma once

#include <string_view>

#include "tandem/core/config.hpp"

namespace tandem::inline v0::detail {

/// The value of the hexadecimal digits `digits` (upper or lower case), or -1 when one is
/// not a hex digit. Callers pass at most 7 digits (the value fits an int).
[[nodiscard]] constexpr int hex_value(std::string_view digits) noexcept {
  int v = 0;
  for (const char c : digits) {
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

}  // namespace tandem::inline v0::detail
