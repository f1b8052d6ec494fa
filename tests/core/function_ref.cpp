// function_ref and the light stand-ins for std::invoke and std::addressof that it and the
// generation loop use (core/detail/light_std.hpp).
#include "tandem/core/function_ref.hpp"

#include "common/catch.hpp"
#include "tandem/core/detail/light_std.hpp"

namespace {

struct counter {
  int value = 0;
  int add(int by) {
    value += by;
    return value;
  }
  int twice() const { return 2 * value; }
};

// A type whose unary & lies, as some handle types do.
struct odd_address {
  int payload = 7;
  const odd_address* operator&() const { return nullptr; }
};

template <class F, class... A>
concept detail_invocable = requires(F f, A... a) {
  tandem::detail::invoke(f, a...);
};

}  // namespace

TEST_CASE("function_ref: calls a lambda it refers to, and sees its later state", "[function_ref]") {
  int calls = 0;
  auto f = [&](int x) { return x + (++calls); };
  const tandem::function_ref<int(int)> ref(f);
  CHECK(ref(10) == 11);
  CHECK(ref(10) == 12);
  CHECK(calls == 2);
}

TEST_CASE("function_ref: calls a plain function", "[function_ref]") {
  int (*negate)(int) = [](int x) { return -x; };
  const tandem::function_ref<int(int)> ref(negate);
  CHECK(ref(5) == -5);
}

TEST_CASE("detail::invoke: calls member functions on objects and pointers, reads data members",
          "[function_ref]") {
  counter c;
  CHECK(tandem::detail::invoke(&counter::add, c, 3) == 3);
  CHECK(tandem::detail::invoke(&counter::add, &c, 4) == 7);
  const counter& cc = c;
  CHECK(tandem::detail::invoke(&counter::twice, cc) == 14);
  CHECK(tandem::detail::invoke(&counter::value, c) == 7);
  tandem::detail::invoke(&counter::value, &c) = 1;
  CHECK(c.value == 1);
  CHECK(tandem::detail::invoke([](int a, int b) { return a * b; }, 6, 7) == 42);
}

TEST_CASE("detail::invoke: is not viable for arguments the callable does not take",
          "[function_ref]") {
  const auto takes_int = [](int x) { return x; };
  struct not_an_int {};
  constexpr bool viable_int = detail_invocable<decltype(takes_int), int>;
  constexpr bool viable_other = detail_invocable<decltype(takes_int), not_an_int>;
  CHECK(viable_int);
  CHECK_FALSE(viable_other);
}

TEST_CASE("function_ref: binds a pointer to member function", "[function_ref]") {
  counter c;
  auto add = &counter::add;  // an lvalue: function_ref refers to it, it does not copy it
  const tandem::function_ref<int(counter&, int)> ref(add);
  CHECK(ref(c, 2) == 2);
  CHECK(ref(c, 5) == 7);
}

TEST_CASE("detail::addressof: gives the real address when operator& is overloaded",
          "[function_ref]") {
  const odd_address o;
  CHECK(&o == nullptr);
  CHECK(tandem::detail::addressof(o) != nullptr);
  CHECK(tandem::detail::addressof(o)->payload == 7);
}
