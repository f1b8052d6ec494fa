# Install rules: the headers and a CMake package, `find_package(tandem)` giving
# tandem::tandem, plus one component per opt-in target built here: replay evaluation
# (`find_package(tandem COMPONENTS eval)` giving tandem::eval) and each backend
# (`find_package(tandem COMPONENTS llama_cpp)` giving tandem::llama_cpp).
# tandem is header-only, so the package is architecture-independent and lives under
# share/cmake/tandem.

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(TANDEM_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/tandem"
    CACHE STRING "Where tandem's CMake package files are installed, relative to the prefix")

install(TARGETS tandem EXPORT tandemTargets FILE_SET HEADERS)
install(EXPORT tandemTargets NAMESPACE tandem:: DESTINATION "${TANDEM_INSTALL_CMAKEDIR}")

# Each component: its targets plus a file that finds its library again (a backend's
# TANDEM_BACKEND_<name>_CONFIG; a component without a third-party library, eval, is found
# with tandem itself).
foreach(_target IN LISTS TANDEM_COMPONENT_TARGETS)
  string(REGEX REPLACE "^tandem_" "" _name "${_target}")
  install(TARGETS ${_target} EXPORT tandem-${_name}Targets FILE_SET HEADERS)
  install(EXPORT tandem-${_name}Targets NAMESPACE tandem:: DESTINATION "${TANDEM_INSTALL_CMAKEDIR}")
  if(DEFINED TANDEM_BACKEND_${_name}_CONFIG)
    set(_config "${TANDEM_BACKEND_${_name}_CONFIG}")
  else()
    set(_config "set(_found TRUE)\n")
  endif()
  file(CONFIGURE OUTPUT "${PROJECT_BINARY_DIR}/tandem-${_name}Dependencies.cmake"
       CONTENT "# Finds the library of tandem's ${_name} component; sets _found.\n${_config}")
  install(FILES "${PROJECT_BINARY_DIR}/tandem-${_name}Dependencies.cmake"
          DESTINATION "${TANDEM_INSTALL_CMAKEDIR}")
endforeach()

configure_package_config_file(cmake/tandemConfig.cmake.in
                              "${PROJECT_BINARY_DIR}/tandemConfig.cmake"
                              INSTALL_DESTINATION "${TANDEM_INSTALL_CMAKEDIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/tandemConfigVersion.cmake"
                                 COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES "${PROJECT_BINARY_DIR}/tandemConfig.cmake"
              "${PROJECT_BINARY_DIR}/tandemConfigVersion.cmake"
        DESTINATION "${TANDEM_INSTALL_CMAKEDIR}")
