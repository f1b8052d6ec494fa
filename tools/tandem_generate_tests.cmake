# tandem-generate's command-line contract, on a built-in n-gram model trained on the held-out
# KJV slice (no GGUF needed): each case passes when the output matches its pattern and the
# exit status (printed after it as "exit=N") is the one expected: 0 success, 1 a failure, 2 a
# usage error.
set(_corpus "ngram:${PROJECT_SOURCE_DIR}/data/kjv/heldout.txt")
set(_draft "ngram3:${PROJECT_SOURCE_DIR}/data/kjv/heldout.txt")
set(_schema "${PROJECT_SOURCE_DIR}/tests/tools/data/npc_action.schema.json")
function(tandem_generate_test name status pattern)
  add_test(NAME "tandem-generate: ${name}"
           COMMAND sh -c "\"$0\" \"$@\"; echo \"exit=$?\"" $<TARGET_FILE:tandem-generate> ${ARGN})
  set(_wrong "exit=[0-9]")
  if(status EQUAL 0)
    set(_wrong "exit=[1-9]")
  elseif(status EQUAL 1)
    set(_wrong "exit=[02-9]")
  elseif(status EQUAL 2)
    set(_wrong "exit=[013-9]")
  endif()
  set_tests_properties("tandem-generate: ${name}" PROPERTIES PASS_REGULAR_EXPRESSION "${pattern}"
                       FAIL_REGULAR_EXPRESSION "${_wrong}")
endfunction()
tandem_generate_test("a choice prints one of the choices and nothing else" 0
  "^(yea|nay|verily)\nexit=0\n$" --model ${_corpus} --prompt "And he said, " --choices "yea,nay,verily")
tandem_generate_test("a regular expression is matched as a whole" 0
  "^[0-9][0-9]:[0-9][0-9] [A-Z][a-z]+\nexit=0\n$" --model ${_corpus} --prompt "In the year "
  --regex "[0-9]{2}:[0-9]{2} [A-Z][a-z]{2,8}" --temperature 0.8 --seed 3)
tandem_generate_test("a JSON Schema gives a parsable instance with its required members" 0
  "^\\{\"action\":\"(greet|trade|flee|attack)\",\"say\":\".*\"(,\"mood\":([0-9]|10))?\\}\nexit=0\n$"
  --model ${_corpus} --prompt "The king said " --schema ${_schema} --max-tokens 200)
tandem_generate_test("--json reports the forced tokens and the draft statistics" 0
  "\"finish\":\"constraint_complete\".*\"forced_tokens\":[1-9][0-9]*.*\"speculative\":true.*\"drafted\":[1-9]"
  --model ${_corpus} --draft ${_draft} --prompt "The king said " --schema ${_schema}
  --max-tokens 200 --json)
tandem_generate_test("speculative decoding with a draft prints the target's own text" 0
  "^[^\n]+\nexit=0\n$" --model ${_corpus} --draft ${_draft} --prompt "And God said" --max-tokens 40)
tandem_generate_test("a regex outside the dialect is a named error" 1
  "unsupported" --model ${_corpus} --prompt "x" --regex "(?=a)b")
tandem_generate_test("a schema keyword outside the subset is a named error naming it" 1
  "unsupported.*patternProperties" --model ${_corpus} --prompt "x"
  --schema "${PROJECT_SOURCE_DIR}/tests/tools/data/bad_keyword.schema.json")
tandem_generate_test("an output cut short before its constraint allows an end is a failure" 1
  "\"constraint_satisfied\":false.*ended \\(length\\) before the constraint allows it"
  --model ${_corpus} --prompt "And he said, " --choices "verily verily I say unto you"
  --max-tokens 3 --json)
# (An empty argument cannot travel in a CMake list: the shell passes it.)
add_test(NAME "tandem-generate: an empty --regex allows only the empty output"
         COMMAND sh -c "\"$0\" --model \"$1\" --prompt x --regex ''; echo \"exit=$?\""
                 $<TARGET_FILE:tandem-generate> ${_corpus})
set_tests_properties("tandem-generate: an empty --regex allows only the empty output"
                     PROPERTIES PASS_REGULAR_EXPRESSION "^\nexit=0\n$")
tandem_generate_test("a budget past what memory can hold is a usage error" 2 "whole number up to"
  --model ${_corpus} --prompt "x" --max-tokens 99999999999999999999999)
tandem_generate_test("two constraints at once are a usage error" 2
  "at most one of --schema, --regex and --choices" --model ${_corpus} --prompt "x" --regex "a"
  --choices "a,b")
tandem_generate_test("--chat on an n-gram model is a usage error" 2 "needs a GGUF model"
  --model ${_corpus} --chat "${PROJECT_SOURCE_DIR}/tests/tools/data/npc_action.schema.json")

# On a GGUF (random weights, tandem-make-gguf's built-in vocabulary with a ChatML template):
# --chat renders the messages with the model's own template; a constraint and a draft work
# on llama.cpp models as on the n-gram one.
if(TARGET tandem-make-gguf)
  set(_gguf "${CMAKE_CURRENT_BINARY_DIR}/generate_chatml.gguf")
  add_test(NAME "tandem-generate: a ChatML GGUF fixture is written"
           COMMAND tandem-make-gguf --out "${_gguf}" --chat-template chatml --seed 7)
  set_tests_properties("tandem-generate: a ChatML GGUF fixture is written"
                       PROPERTIES FIXTURES_SETUP tandem_generate_gguf)
  set(_chat "${PROJECT_SOURCE_DIR}/tests/tools/data/chat.json")
  tandem_generate_test("--chat renders the conversation with the model's template and a choice holds" 0
    "\"text\":\"(yes|no)\".*\"prompt_tokens\":[1-9][0-9]*,\"finish\":\"constraint_complete\""
    --model "${_gguf}" --chat "${_chat}" --choices "yes,no" --json --threads 1)
  tandem_generate_test("a GGUF target with a GGUF draft keeps a regular expression" 0
    "\"text\":\"[a-z]+-[0-9][0-9]\".*\"speculative\":true.*\"drafted\":[1-9]"
    --model "${_gguf}" --draft "${_gguf}" --prompt "code" --regex "[a-z]{2,6}-[0-9]{2}" --json
    --threads 1)
  tandem_generate_test("--chat with a model file that has no template is unknown_template" 1
    "unknown_template" --model "${CMAKE_CURRENT_BINARY_DIR}/generate_plain.gguf" --chat "${_chat}")
  add_test(NAME "tandem-generate: a GGUF fixture without a template is written"
           COMMAND tandem-make-gguf --out "${CMAKE_CURRENT_BINARY_DIR}/generate_plain.gguf" --seed 7)
  set_tests_properties("tandem-generate: a GGUF fixture without a template is written"
                       PROPERTIES FIXTURES_SETUP tandem_generate_plain)
  set_tests_properties(
    "tandem-generate: --chat renders the conversation with the model's template and a choice holds"
    "tandem-generate: a GGUF target with a GGUF draft keeps a regular expression"
    PROPERTIES FIXTURES_REQUIRED tandem_generate_gguf)
  set_tests_properties("tandem-generate: --chat with a model file that has no template is unknown_template"
                       PROPERTIES FIXTURES_REQUIRED tandem_generate_plain)
endif()
