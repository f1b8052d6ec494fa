# The tools' --svg charts: each tool writes its chart from small bundled data (one
# fixture test per chart), then the chart must be well-formed SVG with the expected
# series (svg_check, tests/common/svg_check.hpp) and, where xmllint is found, pass
# `xmllint --noout`.
add_executable(svg_check tools/svg_check_main.cpp)
target_link_libraries(svg_check PRIVATE tandem::tandem tandem_test_flags)
target_include_directories(svg_check PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
find_program(TANDEM_XMLLINT xmllint)
# bench_speculative's chart assembly is tested from made-up figures (benchmarks are off by
# default): tools/speculative_charts.cpp includes benchmarks/speculative_charts.hpp.
target_include_directories(test_eval_svg PRIVATE "${PROJECT_SOURCE_DIR}/benchmarks")

set(_svg_dir "${CMAKE_CURRENT_BINARY_DIR}/svg_charts")
file(MAKE_DIRECTORY "${_svg_dir}")
set(_routellm "${PROJECT_SOURCE_DIR}/data/routellm")
set(_routellm_models mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview)
set(_routellm_costs mistralai/Mixtral-8x7B-Instruct-v0.1=1,gpt-4-1106-preview=20)

# tandem_svg_chart_test(<tool> <what> <svg file> SERIES <names...> COMMAND <args...>)
function(tandem_svg_chart_test tool what file)
  cmake_parse_arguments(PARSE_ARGV 3 _a "" "" "SERIES;COMMAND")
  if(NOT TARGET ${tool})
    return()
  endif()
  set(_svg "${_svg_dir}/${file}")
  set(_write "${tool}: ${what} --svg writes a chart")
  add_test(NAME "${_write}"
           COMMAND sh -c "rm -f \"$1\" && shift && exec \"$@\"" sh "${_svg}"
                   $<TARGET_FILE:${tool}> ${_a_COMMAND} --svg "${_svg}")
  set_tests_properties("${_write}" PROPERTIES FIXTURES_SETUP "svg_${file}")
  list(JOIN _a_SERIES ", " _names)
  add_test(NAME "${tool}: the ${what} chart is well-formed SVG with series ${_names}"
           COMMAND svg_check "${_svg}" ${_a_SERIES})
  set_tests_properties("${tool}: the ${what} chart is well-formed SVG with series ${_names}"
                       PROPERTIES FIXTURES_REQUIRED "svg_${file}")
  if(TANDEM_XMLLINT)
    add_test(NAME "${tool}: the ${what} chart passes xmllint"
             COMMAND "${TANDEM_XMLLINT}" --noout "${_svg}")
    set_tests_properties("${tool}: the ${what} chart passes xmllint"
                         PROPERTIES FIXTURES_REQUIRED "svg_${file}")
  else()
    tandem_skip_test("${tool}: the ${what} chart passes xmllint" "xmllint not found (libxml2-utils)")
  endif()
endfunction()

tandem_svg_chart_test(tandem-route "eval (GSM8K)" route_gsm8k.svg
  SERIES router oracle "single models"
  COMMAND eval --data ${_routellm}/gsm8k/gsm8k_responses.csv --models ${_routellm_models}
          --costs ${_routellm_costs} --predictor knn)
tandem_svg_chart_test(tandem-cascade "eval (MMLU abstract algebra)" cascade_mmlu.svg
  SERIES cascade oracle "single models"
  COMMAND eval --data ${_routellm}/mmlu/mmlu_abstract_algebra.csv --models ${_routellm_models}
          --costs ${_routellm_costs})
tandem_svg_chart_test(tandem-confidence "eval reliability" confidence.svg
  SERIES "accuracy per bin" "bin means" "perfect calibration"
  COMMAND eval ${PROJECT_SOURCE_DIR}/tests/confidence/data/scores.csv --score confidence
          --label correct)
