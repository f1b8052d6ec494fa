# Fails unless DOC holds, verbatim as a ```cpp code block, the lines of SOURCE between the
# marker lines `// [NAME]` and `// [NAME end]` (without the markers, with the first
# line's indentation removed from every line), so that a snippet in the docs is code the
# test suite compiles and runs.
#   cmake -DDOC=<docs/x.md> -DSOURCE=<examples/y.cpp> -DNAME=<marker> -P check_doc_snippet.cmake
cmake_minimum_required(VERSION 3.23)
foreach(_var DOC SOURCE)
  if(NOT DEFINED ${_var} OR NOT EXISTS "${${_var}}")
    message(FATAL_ERROR "check_doc_snippet: -D${_var}=<file> is missing or does not exist")
  endif()
endforeach()
if(NOT NAME)
  message(FATAL_ERROR "check_doc_snippet: -DNAME=<marker> is missing")
endif()
file(READ "${DOC}" _doc)
file(READ "${SOURCE}" _source)
string(REPLACE "\r\n" "\n" _doc "${_doc}")
string(REPLACE "\r\n" "\n" _source "${_source}")

set(_begin_marker "// [${NAME}]\n")
string(FIND "${_source}" "${_begin_marker}" _begin)
string(FIND "${_source}" "// [${NAME} end]" _end)
if(_begin EQUAL -1 OR _end EQUAL -1 OR _end LESS _begin)
  message(FATAL_ERROR "${SOURCE} has no `// [${NAME}]` ... `// [${NAME} end]` marker lines")
endif()
string(LENGTH "${_begin_marker}" _marker_length)
math(EXPR _from "${_begin} + ${_marker_length}")
math(EXPR _length "${_end} - ${_from}")
string(SUBSTRING "${_source}" ${_from} ${_length} _snippet)
string(REGEX REPLACE "[ ]+$" "" _snippet "${_snippet}")  # the end marker's indentation
string(REGEX MATCH "^ *" _indent "${_snippet}")
if(_indent)
  string(REPLACE "\n${_indent}" "\n" _snippet "\n${_snippet}")
  string(SUBSTRING "${_snippet}" 1 -1 _snippet)
endif()

string(FIND "${_doc}" "```cpp\n${_snippet}```\n" _at)
if(_at EQUAL -1)
  message(FATAL_ERROR "${DOC} does not show the `${NAME}` snippet of ${SOURCE} verbatim in a "
                      "```cpp block; it should read:\n```cpp\n${_snippet}```")
endif()
message(STATUS "${DOC} shows the `${NAME}` snippet of ${SOURCE} verbatim")
