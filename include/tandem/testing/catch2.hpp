// tandem: the conformance suite in Catch2 tests (v2 and v3).
/// \file
/// `TANDEM_CHECK_CONFORMANCE(report)` and `TANDEM_REQUIRE_CONFORMANCE(report)`: one Catch2
/// assertion per check of a conformance_report, so that a failure names the check and
/// says what differed:
///
/// \code
/// #include <catch2/catch_test_macros.hpp>   // or <catch2/catch.hpp> (v2), first or not at all
/// #include <tandem/testing/catch2.hpp>
///
/// TEST_CASE("my backend conforms") {
///   TANDEM_CHECK_CONFORMANCE(tandem::check_language_model([] { return my_model(); }));
/// }
/// \endcode
///
/// When Catch2 is already included (v2's catch.hpp, v3's catch_test_macros.hpp or
/// catch_all.hpp, with or without CATCH_CONFIG_PREFIX_ALL), this header uses it as it is;
/// otherwise it includes <catch2/catch_test_macros.hpp> (v3) or <catch2/catch.hpp> (v2),
/// whichever is found. Checks that are not applicable pass (they are in the report, not
/// hidden); a report with no passed check at all fails.
#pragma once

#if !defined(CHECK) && !defined(CATCH_CHECK)
#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_test_macros.hpp>
#elif __has_include(<catch2/catch.hpp>)
#include <catch2/catch.hpp>
#else
#error \
    "tandem/testing/catch2.hpp needs Catch2 (v2: catch2/catch.hpp, v3: catch2/catch_test_macros.hpp)"
#endif
#endif
#if !defined(INFO) && !defined(CATCH_INFO) && __has_include(<catch2/catch_message.hpp>)
#include <catch2/catch_message.hpp>
#endif

#include <string>

#include "tandem/testing/conformance.hpp"

///@{
/// The Catch2 macros the adapter expands to: CATCH_-prefixed under
/// CATCH_CONFIG_PREFIX_ALL, plain otherwise.
#if defined(CATCH_CONFIG_PREFIX_ALL)
#define TANDEM_DETAIL_CATCH_INFO CATCH_INFO
#define TANDEM_DETAIL_CATCH_CHECK CATCH_CHECK
#define TANDEM_DETAIL_CATCH_REQUIRE CATCH_REQUIRE
#else
#define TANDEM_DETAIL_CATCH_INFO INFO
#define TANDEM_DETAIL_CATCH_CHECK CHECK
#define TANDEM_DETAIL_CATCH_REQUIRE REQUIRE
#endif
///@}

namespace tandem::inline v0::detail {

/// "name: status: message", the text Catch2 shows with a check's assertion.
inline std::string conformance_describe(const conformance_check& c) {
  std::string s(c.name());
  s += ": ";
  s += to_string(c.status);
  if (!c.message().empty()) {
    s += ": ";
    s += c.message();
  }
  return s;
}

}  // namespace tandem::inline v0::detail

/// Evaluates `report` (a tandem::conformance_report) once and makes one CHECK per check,
/// with the check's name and message as INFO: a failed check fails the test case and
/// the run goes on. Also CHECKs that at least one check passed.
#define TANDEM_CHECK_CONFORMANCE(report) \
  TANDEM_DETAIL_CONFORMANCE(report, TANDEM_DETAIL_CATCH_CHECK)

/// As TANDEM_CHECK_CONFORMANCE, with REQUIRE: the first failed check ends the test case.
#define TANDEM_REQUIRE_CONFORMANCE(report) \
  TANDEM_DETAIL_CONFORMANCE(report, TANDEM_DETAIL_CATCH_REQUIRE)

/// Implementation of the two macros above.
#define TANDEM_DETAIL_CONFORMANCE(report, ASSERT)                                                  \
  do {                                                                                             \
    const ::tandem::conformance_report& tandem_conformance_report_ = (report);                     \
    for (const ::tandem::conformance_check& tandem_conformance_check_ :                            \
         tandem_conformance_report_.checks()) {                                                    \
      TANDEM_DETAIL_CATCH_INFO(::tandem::detail::conformance_describe(tandem_conformance_check_)); \
      ASSERT(!tandem_conformance_check_.failed());                                                 \
    }                                                                                              \
    TANDEM_DETAIL_CATCH_INFO("conformance report: no check passed");                               \
    ASSERT(tandem_conformance_report_.count(::tandem::conformance_status::passed) > 0);            \
  } while (false)
