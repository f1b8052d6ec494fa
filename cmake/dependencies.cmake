# Finds tandem's required header-only dependencies (xsimd, Eigen) and lists its headers.

# Debian's xsimd 8.1 package config links a target named `xtl` that it does not create;
# an empty INTERFACE target satisfies it.
if(NOT TARGET xtl)
  add_library(xtl INTERFACE IMPORTED)
endif()
find_package(xsimd REQUIRED)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)

file(GLOB_RECURSE TANDEM_HEADERS CONFIGURE_DEPENDS
     RELATIVE "${CMAKE_CURRENT_LIST_DIR}/.." "${CMAKE_CURRENT_LIST_DIR}/../include/tandem/*.hpp")
list(TRANSFORM TANDEM_HEADERS PREPEND "${CMAKE_CURRENT_LIST_DIR}/../")
