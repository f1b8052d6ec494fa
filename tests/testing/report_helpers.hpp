// Test helper shared by the conformance-suite tests: a report's text and a check's status.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/catch.hpp"
#include "tandem/testing/conformance.hpp"

namespace tandem_test {

/// The report as the text `format` writes.
inline std::string text_of(const tandem::conformance_report& r) {
  std::vector<char> buf(16384);
  r.format(buf.data(), buf.size());
  return buf.data();
}

/// The status of check `name` (fails the test when the report has no such check).
inline tandem::conformance_status status_of(const tandem::conformance_report& r,
                                            std::string_view name) {
  const tandem::conformance_check* c = r.find(name);
  REQUIRE(c != nullptr);
  return c->status;
}

}  // namespace tandem_test
