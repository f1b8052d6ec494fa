# Finds tandem's header-only dependencies (Eigen; xsimd when TANDEM_USE_XSIMD is on) and
# lists its headers.

# tandem_find_xsimd(<mode>): find_package(xsimd <mode>). Debian's xsimd 8.1 package links a
# target named `xtl` that it does not create: use the real xtl package when there is one,
# else an empty INTERFACE target satisfies the link.
macro(tandem_find_xsimd _mode)
  if(NOT TARGET xtl)
    find_package(xtl CONFIG QUIET)
  endif()
  if(NOT TARGET xtl)
    add_library(xtl INTERFACE IMPORTED)
  endif()
  find_package(xsimd ${_mode})
endmacro()
if(TANDEM_USE_XSIMD)
  tandem_find_xsimd(REQUIRED)
endif()
find_package(Eigen3 3.4 REQUIRED NO_MODULE)

# Every header under include/tandem (absolute paths); CONFIGURE_DEPENDS re-runs the
# configure step when a header is added or removed.
file(GLOB_RECURSE TANDEM_HEADERS CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/include/tandem/*.hpp")
list(SORT TANDEM_HEADERS)
