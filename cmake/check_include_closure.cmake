# Include-closure check: the headers a translation unit holding only `#include <HEADER>`
# pulls in, listed by the compiler's dependency output (-M, system headers included), must
# not match any of the FORBIDDEN regular expressions. It keeps `<tandem/tandem.hpp>` free
# of replay evaluation (tandem/eval/, CSV), the tools' SVG and JSON Lines code and
# nlohmann-json.
#   cmake -DCXX=<GCC or Clang> -DINCLUDE_DIRS=<dir|dir|...> -DHEADER=tandem/tandem.hpp
#         -DFORBIDDEN=<regex|regex|...> -DWORK_DIR=<dir> -P check_include_closure.cmake
# ('|' separates list items: a ';' would split the command line.)
cmake_minimum_required(VERSION 3.23)
foreach(_var CXX INCLUDE_DIRS HEADER FORBIDDEN WORK_DIR)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "check_include_closure.cmake: -D${_var}=... is missing")
  endif()
endforeach()
string(REPLACE "|" ";" _include_dirs "${INCLUDE_DIRS}")
string(REPLACE "|" ";" _forbidden "${FORBIDDEN}")

file(MAKE_DIRECTORY "${WORK_DIR}")
string(MAKE_C_IDENTIFIER "${HEADER}" _name)
set(_source "${WORK_DIR}/include_closure_${_name}.cpp")
file(WRITE "${_source}" "#include <${HEADER}>\n")
set(_flags -std=c++20 -M)
foreach(_dir IN LISTS _include_dirs)
  list(APPEND _flags "-I${_dir}")
endforeach()
execute_process(COMMAND "${CXX}" ${_flags} "${_source}"
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _deps ERROR_VARIABLE _err)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "cannot preprocess <${HEADER}>:\n${_err}")
endif()

# Make's rule syntax: "target: dep dep \<newline> dep ..." to one path per list item.
string(REGEX REPLACE "^[^:]*:" "" _deps "${_deps}")
string(REPLACE "\\\n" " " _deps "${_deps}")
string(REGEX REPLACE "[ \t\r\n]+" ";" _deps "${_deps}")
list(FILTER _deps EXCLUDE REGEX "^$")
list(REMOVE_ITEM _deps "${_source}")
list(LENGTH _deps _count)
if(_count LESS 10)
  message(FATAL_ERROR "<${HEADER}> pulls in only ${_count} files: the dependency output "
                      "was not understood:\n${_deps}")
endif()

set(_bad "")
foreach(_path IN LISTS _deps)
  foreach(_regex IN LISTS _forbidden)
    if(_path MATCHES "${_regex}")
      list(APPEND _bad "  ${_path} (matches '${_regex}')")
    endif()
  endforeach()
endforeach()
if(_bad)
  list(JOIN _bad "\n" _bad)
  message(FATAL_ERROR "<${HEADER}> pulls in what it must not:\n${_bad}")
endif()
message(STATUS "<${HEADER}>: ${_count} files, none forbidden")
