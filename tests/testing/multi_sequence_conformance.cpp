// The multi-sequence part of the conformance suite: the multi-sequence mock and the loop
// adapter over single-sequence mocks pass it, and each broken multi-sequence mock fails
// the check named for the contract it breaks.
#include <string>
#include <vector>

#include "common/catch.hpp"
#include "common/mock_model.hpp"
#include "tandem/core/sequence_pool.hpp"
#include "tandem/testing/catch2.hpp"
#include "tandem/testing/conformance.hpp"
#include "testing/report_helpers.hpp"

namespace {

using tandem::conformance_report;
using tandem::conformance_status;
using tandem_test::mock_model;
using tandem_test::mock_multi_model;
using tandem_test::mock_multi_options;
using tandem_test::multi_fault;

using tandem_test::status_of;
using tandem_test::text_of;

tandem::multi_sequence_conformance_options exact_options() {
  tandem::multi_sequence_conformance_options o;
  o.tolerance = tandem::conformance_tolerance::exact();
  o.steps = 300;
  return o;
}

conformance_report run_mock(multi_fault f, std::size_t context_length = 64) {
  mock_multi_options o;
  o.model.vocab = 16;
  o.model.context_length = context_length;
  o.max_sequences = 4;
  o.fault = f;
  return tandem::check_multi_sequence_model([&] { return mock_multi_model(o); },
                                            [&] { return mock_model(o.model); }, exact_options());
}

}  // namespace

TEST_CASE("multi-sequence conformance: the multi-sequence mock passes every check",
          "[testing][multi_sequence]") {
  const conformance_report r = run_mock(multi_fault::none);
  INFO(text_of(r));
  CHECK(r.passed());
  CHECK(r.count(conformance_status::not_applicable) == 0);
}

TEST_CASE("multi-sequence conformance: the loop adapter over mock sessions passes",
          "[testing][multi_sequence]") {
  tandem_test::mock_options mo;
  mo.context_length = 64;
  auto factory = [mo] { return mock_model(mo); };
  const conformance_report r = tandem::check_multi_sequence_model(
      [&] { return tandem::sequence_pool<decltype(factory)>::create(factory, 3); },
      [&] { return mock_model(mo); }, exact_options());
  INFO(text_of(r));
  CHECK(r.passed());
  CHECK(r.count(conformance_status::not_applicable) == 0);
}

TEST_CASE("multi-sequence conformance: a fork that does not copy the logits fails fork checks",
          "[testing][multi_sequence]") {
  const conformance_report r = run_mock(multi_fault::fork_skips_logits);
  INFO(text_of(r));
  CHECK(status_of(r, "fork_equals_recompute") == conformance_status::failed);
  CHECK(status_of(r, "multi_interleaving_equals_lone") == conformance_status::failed);
}

TEST_CASE("multi-sequence conformance: logits leaking between batch entries fail the interleaving",
          "[testing][multi_sequence]") {
  const conformance_report r = run_mock(multi_fault::logits_from_batch);
  INFO(text_of(r));
  CHECK(status_of(r, "multi_interleaving_equals_lone") == conformance_status::failed);
  CHECK(status_of(r, "fork_equals_recompute") == conformance_status::failed);
}

TEST_CASE("multi-sequence conformance: a batch applied in part fails each error check",
          "[testing][multi_sequence]") {
  const conformance_report r = run_mock(multi_fault::partial_batch);
  INFO(text_of(r));
  CHECK(status_of(r, "invalid_sequence_changes_nothing") == conformance_status::failed);
  CHECK(status_of(r, "bad_batch_changes_nothing") == conformance_status::failed);
  CHECK(status_of(r, "sequence_overflow_changes_nothing") == conformance_status::failed);
  CHECK(status_of(r, "multi_interleaving_equals_lone") == conformance_status::passed);
}

TEST_CASE("multi-sequence conformance: a close that disturbs another sequence fails",
          "[testing][multi_sequence]") {
  const conformance_report r = run_mock(multi_fault::close_clears_others);
  INFO(text_of(r));
  CHECK(status_of(r, "multi_interleaving_equals_lone") == conformance_status::failed);
  CHECK(status_of(r, "fork_equals_recompute") == conformance_status::failed);
}

TEST_CASE("multi-sequence conformance: too few sequences and a model with no context bound",
          "[testing][multi_sequence]") {
  mock_multi_options o;
  o.max_sequences = 1;
  const conformance_report one = tandem::check_multi_sequence_model(
      [&] { return mock_multi_model(o); }, [&] { return mock_model(o.model); });
  CHECK_FALSE(one.passed());
  CHECK(status_of(one, "make_fresh_model") == conformance_status::failed);
  o.max_sequences = 16;  // above max_open: no_free_sequence is not applicable
  const conformance_report many = tandem::check_multi_sequence_model(
      [&] { return mock_multi_model(o); }, [&] { return mock_model(o.model); });
  INFO(text_of(many));
  CHECK(many.passed());
  CHECK(status_of(many, "no_free_sequence_changes_nothing") == conformance_status::not_applicable);
  CHECK(status_of(many, "sequence_overflow_changes_nothing") == conformance_status::not_applicable);
}
