# The tandem-cascade command-line contract: each case passes when the output matches.
set(_cd "${PROJECT_SOURCE_DIR}/tests/eval/data")
set(_cbase eval --models weak,strong --costs weak=1,strong=20)
function(tandem_cascade_test name pattern)
  add_test(NAME "tandem-cascade: ${name}" COMMAND tandem-cascade ${ARGN})
  set_tests_properties("tandem-cascade: ${name}" PROPERTIES PASS_REGULAR_EXPRESSION "${pattern}")
endfunction()
tandem_cascade_test("eval prints the metrics as one JSON object"
  "\"n_train\":56,\"n_test\":24,\"n_dropped\":1.*\"apgr\":.*\"cpt50\":.*\"aiq\":.*\"cost_at_best_single_quality\":.*\"curve\":"
  ${_cbase} --data ${_cd}/tiny_outcomes.csv)
tandem_cascade_test("three models with per-row costs and every policy kind"
  "\"stage_order\":\\[\"weak\",\"mid\",\"strong\"\\].*\"budget\":.*\"escalation_rate\":.*\"guaranteed\":"
  eval --models weak,mid,strong --cost-suffix _cost --data ${_cd}/tiny_outcomes.csv
  --budget 10 --escalation-rate 0.3 --epsilon 0.2)
tandem_cascade_test("per-row costs and excluded prompts" "\"n_excluded\":1"
  eval --models weak,strong --cost-suffix _cost --data ${_cd} --exclude-prompts ${_cd}/exclude.jsonl)
tandem_cascade_test("a missing column is named" "no column \"nosuch\""
  eval --models weak,nosuch --costs weak=1,nosuch=2 --data ${_cd}/tiny_outcomes.csv)
tandem_cascade_test("a missing response column is named" "missing column 'weak_answer'"
  ${_cbase} --data ${_cd}/tiny_outcomes.csv --response-suffix _answer)
tandem_cascade_test("a non-numeric cost cell is named" "data row 2: column \"weak_cost\": bad value \"cheap\""
  eval --models weak,strong --cost-suffix _cost --data ${_cd}/bad/bad_cost.csv)
tandem_cascade_test("a non-numeric --costs value is named" "cost of 'strong' is not a non-negative number"
  ${_cbase}x --data ${_cd}/tiny_outcomes.csv)
tandem_cascade_test("an empty split is an error" "the test split is empty"
  ${_cbase} --train ${_cd}/tiny_outcomes.csv --test ${_cd}/bad/all_dropped.csv)
tandem_cascade_test("an unknown flag is an error" "unknown flag '--frobnicate'"
  ${_cbase} --data ${_cd}/tiny_outcomes.csv --frobnicate)
tandem_cascade_test("an impossible budget is an error" "no cascade meets --budget"
  ${_cbase} --data ${_cd}/tiny_outcomes.csv --budget 0.5)
