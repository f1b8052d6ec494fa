# Fails unless README.md holds examples/readme_sample.cpp verbatim as a ```cpp code block,
# so the README's code sample is the program the test suite compiles and runs.
#   cmake -DREADME=<README.md> -DSAMPLE=<examples/readme_sample.cpp> -P check_readme_sample.cmake
cmake_minimum_required(VERSION 3.23)
foreach(_var README SAMPLE)
  if(NOT DEFINED ${_var} OR NOT EXISTS "${${_var}}")
    message(FATAL_ERROR "check_readme_sample: -D${_var}=<file> is missing or does not exist")
  endif()
endforeach()
file(READ "${README}" _readme)
file(READ "${SAMPLE}" _sample)
string(REPLACE "\r\n" "\n" _readme "${_readme}")
string(REPLACE "\r\n" "\n" _sample "${_sample}")
string(FIND "${_readme}" "```cpp\n${_sample}```\n" _at)
if(_at EQUAL -1)
  message(FATAL_ERROR "README.md does not contain ${SAMPLE} verbatim in a ```cpp block: "
                      "paste the file's text between ```cpp and ``` lines.")
endif()
message(STATUS "README.md contains ${SAMPLE} verbatim")
