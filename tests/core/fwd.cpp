// tandem/fwd.hpp: the forward declarations agree with the definitions, and a header
// that only names the types compiles with fwd.hpp alone.
#include <tandem/fwd.hpp>

#include <type_traits>

namespace app {
// What an application header does: signatures over declared-only types.
tandem::result<int> parse_count(const char* text, tandem::error_info* info);
tandem::errc run_once(tandem::any_generator& g, tandem::completion& out);
}  // namespace app

#include <tandem/core.hpp>
#include <tandem/speculative.hpp>

#include "common/catch.hpp"

namespace app {
tandem::result<int> parse_count(const char* text, tandem::error_info* info) {
  if (text == nullptr || *text == '\0')
    return tandem::detail::fail(info, tandem::errc::empty_input, "no text");
  return static_cast<int>(*text - '0');
}
}  // namespace app

TEST_CASE("fwd: declared-only signatures work once the definitions are included", "[fwd]") {
  tandem::error_info info;
  const auto empty = app::parse_count("", &info);
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error() == tandem::errc::empty_input);
  const auto seven = app::parse_count("7", &info);
  REQUIRE(seven.has_value());
  CHECK(*seven == 7);
  // The decoder's default policy, declared in decoder.hpp after fwd.hpp's declaration.
  struct target {};
  struct drafter {};
  STATIC_REQUIRE(
      std::is_same_v<tandem::speculative_decoder<target, drafter>,
                     tandem::speculative_decoder<target, drafter, tandem::adaptive_draft>>);
}
