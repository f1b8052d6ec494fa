#include "tandem/core/result.hpp"

#include <memory>
#include <string>

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
  for (int i = 0; i <= static_cast<int>(errc::out_of_sync); ++i)
    CHECK(tandem::to_string(static_cast<errc>(i)) != "unknown");
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
