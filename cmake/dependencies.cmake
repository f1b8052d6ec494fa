# Finds tandem's required header-only dependencies (xsimd, Eigen) and lists its headers.

# Debian's xsimd 8.1 package links a target named `xtl` that it does not create. Use the
# real xtl package when there is one, else an empty INTERFACE target satisfies the link.
if(NOT TARGET xtl)
  find_package(xtl CONFIG QUIET)
endif()
if(NOT TARGET xtl)
  add_library(xtl INTERFACE IMPORTED)
endif()
find_package(xsimd REQUIRED)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)

# Every header under include/tandem (absolute paths); CONFIGURE_DEPENDS re-runs the
# configure step when a header is added or removed.
file(GLOB_RECURSE TANDEM_HEADERS CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/include/tandem/*.hpp")
list(SORT TANDEM_HEADERS)
