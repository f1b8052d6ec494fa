# Static-state check over tandem's headers (cmake -DINCLUDE_DIR=<dir> -P check_headers.cmake).
#
# Complements the link check in tests/noexcept (two translation units that include every
# header, linked together), which catches non-inline functions and variables with external
# linkage. What a link cannot see is looked for here, line by line (namespace members are
# not indented, so column 0 is namespace scope):
#   - `static` or `thread_local` at namespace scope: one copy per translation unit;
#   - `thread_local` anywhere, and `static` data that is neither `const` nor `constexpr`
#     (a function-local or member static): global mutable state.
# Static member functions and `static constexpr`/`static const` data are fine.
cmake_minimum_required(VERSION 3.23)
if(NOT INCLUDE_DIR)
  message(FATAL_ERROR "usage: cmake -DINCLUDE_DIR=<include dir> -P check_headers.cmake")
endif()
get_filename_component(INCLUDE_DIR "${INCLUDE_DIR}" ABSOLUTE)
file(GLOB_RECURSE _headers "${INCLUDE_DIR}/*.hpp")
set(_problems "")
foreach(_header IN LISTS _headers)
  # One list item per line: ';' and brackets, special in CMake lists, are swapped out.
  file(READ "${_header}" _text)
  string(REPLACE ";" "@SEMICOLON@" _text "${_text}")
  string(REPLACE "[" "@LBRACKET@" _text "${_text}")
  string(REPLACE "]" "@RBRACKET@" _text "${_text}")
  string(REPLACE "\n" ";" _lines "${_text}")
  set(_n 0)
  foreach(_line IN LISTS _lines)
    math(EXPR _n "${_n} + 1")
    if(NOT _line MATCHES "^[ \t]*(static|thread_local)[ \t]")
      continue()
    endif()
    file(RELATIVE_PATH _where "${INCLUDE_DIR}" "${_header}")
    set(_where "${_where}:${_n}")
    if(_line MATCHES "^(static|thread_local)[ \t]")
      string(APPEND _problems "  ${_where}: namespace-scope static or thread_local\n")
    elseif(_line MATCHES "thread_local")
      string(APPEND _problems "  ${_where}: thread_local state\n")
    elseif(_line MATCHES "^[ \t]*static[ \t]+(inline[ \t]+)?(constexpr|const|consteval)[ \t]")
      # constant
    elseif(_line MATCHES "^[ \t]*static[ \t]+[^=({@]*(@SEMICOLON@|=|\\(|{)")
      if(NOT CMAKE_MATCH_1 STREQUAL "(")
        string(APPEND _problems "  ${_where}: mutable static data\n")
      endif()
    endif()
  endforeach()
endforeach()
if(_problems)
  message(FATAL_ERROR "tandem headers hold static state:\n${_problems}")
endif()
list(LENGTH _headers _count)
message(STATUS "${_count} headers checked: no namespace-scope static, no mutable static data")
