// tandem: ASCII helpers shared by the text formats (HTTP header names, CSV booleans).
#pragma once

#include <cstddef>
#include <string_view>

namespace tandem::inline v0::detail {

/// ASCII case-insensitive equality (bytes outside A-Z compare exactly).
[[nodiscard]] constexpr bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace tandem::inline v0::detail
