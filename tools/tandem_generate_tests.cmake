# tandem-generate's command-line contract, on a built-in n-gram model trained on the held-out
# KJV slice (no GGUF needed): each case passes when the output matches its pattern.
set(_corpus "ngram:${PROJECT_SOURCE_DIR}/data/kjv/heldout.txt")
set(_draft "ngram3:${PROJECT_SOURCE_DIR}/data/kjv/heldout.txt")
set(_schema "${PROJECT_SOURCE_DIR}/tests/tools/data/npc_action.schema.json")
function(tandem_generate_test name pattern)
  add_test(NAME "tandem-generate: ${name}" COMMAND tandem-generate ${ARGN})
  set_tests_properties("tandem-generate: ${name}" PROPERTIES PASS_REGULAR_EXPRESSION "${pattern}")
endfunction()
tandem_generate_test("a choice prints one of the choices and nothing else"
  "^(yea|nay|verily)\n$" --model ${_corpus} --prompt "And he said, " --choices "yea,nay,verily")
tandem_generate_test("a regular expression is matched as a whole"
  "^[0-9][0-9]:[0-9][0-9] [A-Z][a-z]+\n$" --model ${_corpus} --prompt "In the year "
  --regex "[0-9]{2}:[0-9]{2} [A-Z][a-z]{2,8}" --temperature 0.8 --seed 3)
tandem_generate_test("a JSON Schema gives a parsable instance with its required members"
  "^\\{\"action\":\"(greet|trade|flee|attack)\",\"say\":\".*\"(,\"mood\":([0-9]|10))?\\}\n$"
  --model ${_corpus} --prompt "The king said " --schema ${_schema} --max-tokens 200)
tandem_generate_test("--json reports the forced tokens and the draft statistics"
  "\"finish\":\"constraint_complete\".*\"forced_tokens\":[1-9][0-9]*.*\"speculative\":true.*\"drafted\":[1-9]"
  --model ${_corpus} --draft ${_draft} --prompt "The king said " --schema ${_schema}
  --max-tokens 200 --json)
tandem_generate_test("speculative decoding with a draft prints the target's own text"
  "^[^\n]+\n$" --model ${_corpus} --draft ${_draft} --prompt "And God said" --max-tokens 40)
tandem_generate_test("a regex outside the dialect is a named error"
  "unsupported" --model ${_corpus} --prompt "x" --regex "(?=a)b")
tandem_generate_test("a schema keyword outside the subset is a named error naming it"
  "unsupported.*patternProperties" --model ${_corpus} --prompt "x"
  --schema "${PROJECT_SOURCE_DIR}/tests/tools/data/bad_keyword.schema.json")
tandem_generate_test("two constraints at once are a usage error"
  "at most one of --schema, --regex and --choices" --model ${_corpus} --prompt "x" --regex "a"
  --choices "a,b")
tandem_generate_test("--chat on an n-gram model is a usage error" "needs a GGUF model"
  --model ${_corpus} --chat "${PROJECT_SOURCE_DIR}/tests/tools/data/npc_action.schema.json")
