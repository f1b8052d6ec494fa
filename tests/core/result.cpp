#include "tandem/core/result.hpp"

#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "common/catch.hpp"

using tandem::errc;
using tandem::result;

TEST_CASE("result: holds a value or a named error", "[core][result]") {
  result<int> v = 42;
  REQUIRE(v.has_value());
  REQUIRE(static_cast<bool>(v));
  CHECK(*v == 42);
  CHECK(v.error() == errc::ok);
  CHECK(v.value_or(7) == 42);

  result<int> e = errc::invalid_token;
  REQUIRE_FALSE(e.has_value());
  CHECK(e.error() == errc::invalid_token);
  CHECK(e.value_or(7) == 7);
}

TEST_CASE("result: copies and moves keep the held alternative", "[core][result]") {
  result<std::string> a = std::string(100, 'x');
  result<std::string> b = a;
  CHECK(*b == *a);
  result<std::string> c = std::move(b);
  CHECK(c->size() == 100);
  c = result<std::string>(errc::io_error);
  CHECK(c.error() == errc::io_error);
  c = a;
  CHECK(*c == std::string(100, 'x'));

  result<std::unique_ptr<int>> p(std::in_place, new int(3));
  result<std::unique_ptr<int>> q = std::move(p);
  CHECK(**q == 3);
}

TEST_CASE("errc: every value has a stable name", "[core][errc]") {
  CHECK(tandem::to_string(errc::ok) == "ok");
  CHECK(tandem::to_string(errc::invalid_token) == "invalid_token");
  CHECK(tandem::to_string(errc::unsupported) == "unsupported");
}

TEST_CASE("errc: every value up to errc_count has its own name, and errc_count has none",
          "[core][errc]") {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < tandem::errc_count; ++i) {
    const std::string_view name = tandem::to_string(static_cast<errc>(i));
    CAPTURE(i, name);
    CHECK(name != "unknown");
    CHECK(names.insert(name).second);
  }
  CHECK(names.size() == tandem::errc_count);
  // An enumerator added after the last one, named but with errc_count left behind, ends
  // up here.
  CHECK(tandem::to_string(static_cast<errc>(tandem::errc_count)) == "unknown");
}

namespace {
errc fails_at(int step, int k) { return step == k ? errc::decode_failed : errc::ok; }
errc run_steps(int k) {
  for (int i = 0; i < 5; ++i) TANDEM_TRY(fails_at(i, k));
  return errc::ok;
}
}  // namespace

TEST_CASE("TANDEM_TRY: propagates the first error", "[core][result]") {
  CHECK(run_steps(2) == errc::decode_failed);
  CHECK(run_steps(9) == errc::ok);
}
