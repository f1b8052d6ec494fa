# Checks shared by the consumer projects: tandem adds nothing to a parent project beyond
# its library targets, and compiles there as C++20 without any global setting.
foreach(_development_target test_core tandem_test_main tandem_noexcept tandem_verify_headers)
  if(TARGET ${_development_target})
    message(FATAL_ERROR "tandem added its development target ${_development_target} to a consumer")
  endif()
endforeach()
if(DEFINED CMAKE_CXX_STANDARD)
  message(FATAL_ERROR "tandem set CMAKE_CXX_STANDARD in a consumer")
endif()
get_directory_property(_include_dirs INCLUDE_DIRECTORIES)
if(_include_dirs)
  message(FATAL_ERROR "tandem added global include directories: ${_include_dirs}")
endif()
