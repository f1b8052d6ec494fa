# tandem's opt-in backends. Included by the top-level CMakeLists.txt before the tandem
# target exists; it calls, in this order:
#   tandem_remove_backend_headers(<list var>)  drop the opt-in backends' headers from a list
#   tandem_add_backends()                       define each backend found, after tandem
# Each backend section defines a macro `_tandem_backend_<name>()` that, when its
# dependency is found, creates target `tandem_<name>` (alias tandem::<name>, EXPORT_NAME
# <name>, its headers as a FILE_SET HEADERS), appends it to TANDEM_BACKEND_TARGETS and sets
# TANDEM_BACKEND_<name>_CONFIG: CMake code for the installed package that finds the
# backend's library again and sets `_found` (written with file(CONFIGURE): no dollar signs).
# Sections are separate; a backend owner edits only its own section.

# =====================================================================================
# Common part
# =====================================================================================

set(TANDEM_BACKEND_TARGETS "")

# The opt-in backends: each needs a third-party library. Backends without one (the
# built-in n-gram LM) stay in tandem::tandem.
set(TANDEM_OPT_IN_BACKENDS sentencepiece llama_cpp http)
# Headers of an opt-in backend whose names do not start with the backend's: they belong
# to that backend's target (llama_grammar.hpp: tandem::llama_cpp).
set(TANDEM_OPT_IN_BACKEND_HEADERS llama_grammar)

# Removes the opt-in backends' headers from the list in <var>: for a backend <name>,
# include/tandem/backends/[detail/]<name>.hpp, <name>_*.hpp and <name>/**.
function(tandem_remove_backend_headers var)
  list(JOIN TANDEM_OPT_IN_BACKENDS "|" _names)
  list(JOIN TANDEM_OPT_IN_BACKEND_HEADERS "|" _extra)
  set(_kept "")
  foreach(_h IN LISTS ${var})
    if(NOT _h MATCHES "/include/tandem/backends/(detail/)?(${_names})(\\.hpp$|_|/)" AND
       NOT _h MATCHES "/include/tandem/backends/(${_extra})\\.hpp$")
      list(APPEND _kept "${_h}")
    endif()
  endforeach()
  set(${var} "${_kept}" PARENT_SCOPE)
endfunction()

# Sets <var> to the headers of backend <name> (the paths the function above removes), taken
# from TANDEM_ALL_HEADERS: what a section may give its FILE_SET.
function(tandem_backend_headers name var)
  set(_mine "")
  foreach(_h IN LISTS TANDEM_ALL_HEADERS)
    if(_h MATCHES "/include/tandem/backends/(detail/)?${name}(\\.hpp$|_|/)")
      list(APPEND _mine "${_h}")
    endif()
  endforeach()
  set(${var} "${_mine}" PARENT_SCOPE)
endfunction()

# Defines every backend whose section exists (a macro: its variables reach the caller).
macro(tandem_add_backends)
  foreach(_tandem_backend IN LISTS TANDEM_OPT_IN_BACKENDS)
    if(COMMAND _tandem_backend_${_tandem_backend})
      cmake_language(CALL _tandem_backend_${_tandem_backend})
    endif()
  endforeach()
  unset(_tandem_backend)
endmacro()

# =====================================================================================
# sentencepiece: tandem::sentencepiece and the fixture tokenizers trained at build time
# =====================================================================================

if(PROJECT_IS_TOP_LEVEL)
  set(_tandem_spm_default AUTO)
else()
  set(_tandem_spm_default OFF)
endif()
set(TANDEM_WITH_SENTENCEPIECE "${_tandem_spm_default}" CACHE STRING
    "Build tandem::sentencepiece: AUTO (when pkg-config finds sentencepiece), ON (required), OFF")
set_property(CACHE TANDEM_WITH_SENTENCEPIECE PROPERTY STRINGS AUTO ON OFF)
unset(_tandem_spm_default)

macro(_tandem_backend_sentencepiece)
  if(NOT TANDEM_WITH_SENTENCEPIECE STREQUAL "OFF")
    # Debian ships sentencepiece with a pkg-config file and no CMake package.
    find_package(PkgConfig QUIET)
    if(PKG_CONFIG_FOUND)
      pkg_check_modules(TANDEM_SENTENCEPIECE QUIET IMPORTED_TARGET GLOBAL sentencepiece)
    endif()
    if(TARGET PkgConfig::TANDEM_SENTENCEPIECE)
      add_library(tandem_sentencepiece INTERFACE)
      add_library(tandem::sentencepiece ALIAS tandem_sentencepiece)
      set_target_properties(tandem_sentencepiece PROPERTIES EXPORT_NAME sentencepiece)
      target_sources(tandem_sentencepiece INTERFACE FILE_SET HEADERS BASE_DIRS "${PROJECT_SOURCE_DIR}/include" FILES
                     "${PROJECT_SOURCE_DIR}/include/tandem/backends/sentencepiece.hpp")
      target_link_libraries(tandem_sentencepiece INTERFACE tandem::tandem
                                                           PkgConfig::TANDEM_SENTENCEPIECE)
      list(APPEND TANDEM_BACKEND_TARGETS tandem_sentencepiece)
      set(TANDEM_BACKEND_sentencepiece_CONFIG [[
set(_found FALSE)
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND AND NOT TARGET PkgConfig::TANDEM_SENTENCEPIECE)
  pkg_check_modules(TANDEM_SENTENCEPIECE QUIET IMPORTED_TARGET GLOBAL sentencepiece)
endif()
if(TARGET PkgConfig::TANDEM_SENTENCEPIECE)
  set(_found TRUE)
endif()
]])
      message(STATUS "tandem: sentencepiece ${TANDEM_SENTENCEPIECE_VERSION} found: "
                     "tandem::sentencepiece")
    elseif(TANDEM_WITH_SENTENCEPIECE STREQUAL "ON")
      message(FATAL_ERROR "tandem: TANDEM_WITH_SENTENCEPIECE=ON but pkg-config cannot find "
                          "sentencepiece (Debian: apt install libsentencepiece-dev)")
    else()
      message(STATUS "tandem: sentencepiece not found: no tandem::sentencepiece")
    endif()
  endif()

  # Fixture tokenizers, trained from the KJV corpus slice in the repository by spm_train
  # (about 3 s in all). The corpus is copied next to the models and spm_train runs there
  # with relative paths, because a model file records its input and output names: the
  # models are then byte-identical whatever the build directory. Settings are
  # deterministic (one thread, fixed seed, no sentence sampling) and keep text exact:
  # identity normalization, whitespace kept, byte fallback for unseen characters.
  # INTERFACE target `tandem_spm_fixtures` builds them and gives its dependents the compile
  # definitions TANDEM_FIXTURE_SPM_BPE4000 (BPE, 4000 pieces, no <pad>) and
  # TANDEM_FIXTURE_SPM_UNIGRAM2000 (unigram, 2000 pieces, <pad> = 3): absolute paths as
  # string literals; also TANDEM_FIXTURE_KJV_HELDOUT, the held-out corpus lines.
  # TANDEM_SPM_FIXTURE_DIR holds their folder.
  find_program(TANDEM_SPM_TRAIN spm_train)
  if(TANDEM_SPM_TRAIN AND (TANDEM_BUILD_TESTS OR TANDEM_BUILD_BENCHMARKS OR TANDEM_BUILD_TOOLS
                           OR TANDEM_BUILD_EXAMPLES))
    set(TANDEM_SPM_FIXTURE_DIR "${PROJECT_BINARY_DIR}/fixtures")
    file(MAKE_DIRECTORY "${TANDEM_SPM_FIXTURE_DIR}")
    add_custom_command(
      OUTPUT "${TANDEM_SPM_FIXTURE_DIR}/kjv_train.txt"
      COMMAND "${CMAKE_COMMAND}" -E copy "${PROJECT_SOURCE_DIR}/data/kjv/train.txt"
              "${TANDEM_SPM_FIXTURE_DIR}/kjv_train.txt"
      DEPENDS "${PROJECT_SOURCE_DIR}/data/kjv/train.txt"
      COMMENT "Copying the KJV corpus for the fixture tokenizers"
      VERBATIM)
    set(_tandem_spm_outputs "")
    # name, model type, vocabulary size, extra flag
    foreach(_tandem_spm_model IN ITEMS "kjv_bpe4000 bpe 4000 --pad_id=-1"
                                       "kjv_unigram2000 unigram 2000 --pad_id=3")
      separate_arguments(_tandem_spm_fields UNIX_COMMAND "${_tandem_spm_model}")
      list(GET _tandem_spm_fields 0 _tandem_spm_name)
      list(GET _tandem_spm_fields 1 _tandem_spm_type)
      list(GET _tandem_spm_fields 2 _tandem_spm_size)
      list(GET _tandem_spm_fields 3 _tandem_spm_extra)
      set(_tandem_spm_out "${TANDEM_SPM_FIXTURE_DIR}/${_tandem_spm_name}")
      add_custom_command(
        OUTPUT "${_tandem_spm_out}.model" "${_tandem_spm_out}.vocab"
        COMMAND "${TANDEM_SPM_TRAIN}" --input=kjv_train.txt --model_prefix=${_tandem_spm_name}
                --model_type=${_tandem_spm_type} --vocab_size=${_tandem_spm_size}
                ${_tandem_spm_extra} --byte_fallback=true --character_coverage=1.0
                --normalization_rule_name=identity --remove_extra_whitespaces=false
                --num_threads=1 --random_seed=20260101 --input_sentence_size=0
                --minloglevel=1
        DEPENDS "${TANDEM_SPM_FIXTURE_DIR}/kjv_train.txt"
        WORKING_DIRECTORY "${TANDEM_SPM_FIXTURE_DIR}"
        COMMENT "Training fixture tokenizer ${_tandem_spm_name}.model"
        VERBATIM)
      list(APPEND _tandem_spm_outputs "${_tandem_spm_out}.model")
    endforeach()
    add_custom_target(tandem_spm_fixture_models DEPENDS ${_tandem_spm_outputs})
    add_library(tandem_spm_fixtures INTERFACE)
    add_dependencies(tandem_spm_fixtures tandem_spm_fixture_models)
    target_compile_definitions(tandem_spm_fixtures INTERFACE
      "TANDEM_FIXTURE_SPM_BPE4000=\"${TANDEM_SPM_FIXTURE_DIR}/kjv_bpe4000.model\""
      "TANDEM_FIXTURE_SPM_UNIGRAM2000=\"${TANDEM_SPM_FIXTURE_DIR}/kjv_unigram2000.model\""
      "TANDEM_FIXTURE_KJV_HELDOUT=\"${PROJECT_SOURCE_DIR}/data/kjv/heldout.txt\"")
    foreach(_v outputs model fields name type size extra out)
      unset(_tandem_spm_${_v})
    endforeach()
  endif()
endmacro()

# =====================================================================================
# llama.cpp: tandem::llama_cpp (section owned by the llama.cpp adapter)
# =====================================================================================

# llama.cpp installs the CMake package `llama` (with `ggml`), found through
# CMAKE_PREFIX_PATH or TANDEM_LLAMA_PREFIX (a cache variable, or else the environment
# variable of that name). tandem is written against llama.cpp 0.5.0-dev, commit de3ff81.
# A static llama.cpp needs what its package already links: ggml::ggml, ggml::ggml-base,
# ggml::ggml-cpu and, where ggml was built with OpenMP, OpenMP::OpenMP_CXX; tandem adds
# Threads::Threads (ggml's CPU backend starts threads; older glibc keeps them in libpthread).
if(PROJECT_IS_TOP_LEVEL)
  set(_tandem_llama_default AUTO)
else()
  set(_tandem_llama_default OFF)
endif()
set(TANDEM_WITH_LLAMA_CPP "${_tandem_llama_default}" CACHE STRING
    "Build tandem::llama_cpp: AUTO (when the CMake package `llama` is found), ON (required), OFF")
set_property(CACHE TANDEM_WITH_LLAMA_CPP PROPERTY STRINGS AUTO ON OFF)
unset(_tandem_llama_default)
if(NOT DEFINED TANDEM_LLAMA_PREFIX AND DEFINED ENV{TANDEM_LLAMA_PREFIX})
  set(TANDEM_LLAMA_PREFIX "$ENV{TANDEM_LLAMA_PREFIX}")
endif()
set(TANDEM_LLAMA_PREFIX "${TANDEM_LLAMA_PREFIX}" CACHE PATH
    "Install prefix of llama.cpp (searched before CMAKE_PREFIX_PATH)")

macro(_tandem_backend_llama_cpp)
  if(NOT TANDEM_WITH_LLAMA_CPP STREQUAL "OFF")
    if(TANDEM_LLAMA_PREFIX)
      find_package(llama CONFIG QUIET HINTS "${TANDEM_LLAMA_PREFIX}" "${TANDEM_LLAMA_PREFIX}/lib/cmake/llama")
    else()
      find_package(llama CONFIG QUIET)
    endif()
    if(TARGET llama)
      find_package(Threads REQUIRED)
      add_library(tandem_llama_cpp INTERFACE)
      add_library(tandem::llama_cpp ALIAS tandem_llama_cpp)
      set_target_properties(tandem_llama_cpp PROPERTIES EXPORT_NAME llama_cpp)
      target_sources(tandem_llama_cpp INTERFACE FILE_SET HEADERS BASE_DIRS "${PROJECT_SOURCE_DIR}/include" FILES
                     "${PROJECT_SOURCE_DIR}/include/tandem/backends/llama_cpp.hpp"
                     "${PROJECT_SOURCE_DIR}/include/tandem/backends/llama_cpp_chat.hpp"
                     "${PROJECT_SOURCE_DIR}/include/tandem/backends/llama_cpp_text.hpp"
                     "${PROJECT_SOURCE_DIR}/include/tandem/backends/llama_grammar.hpp")
      target_link_libraries(tandem_llama_cpp INTERFACE tandem::tandem llama Threads::Threads)
      list(APPEND TANDEM_BACKEND_TARGETS tandem_llama_cpp)
      set(TANDEM_BACKEND_llama_cpp_CONFIG [[
set(_found FALSE)
find_package(llama CONFIG QUIET)
find_package(Threads QUIET)
if(TARGET llama AND TARGET Threads::Threads)
  set(_found TRUE)
endif()
]])
      if(NOT LLAMA_BUILD_COMMIT STREQUAL "de3ff81")
        message(STATUS "tandem: llama.cpp commit ${LLAMA_BUILD_COMMIT} differs from the tested de3ff81")
      endif()
      message(STATUS "tandem: llama.cpp ${LLAMA_VERSION} (commit ${LLAMA_BUILD_COMMIT}) found: "
                     "tandem::llama_cpp")
    elseif(TANDEM_WITH_LLAMA_CPP STREQUAL "ON" OR TANDEM_LLAMA_PREFIX)
      message(FATAL_ERROR "tandem: llama.cpp requested (TANDEM_WITH_LLAMA_CPP=ON or "
                          "TANDEM_LLAMA_PREFIX set) but the CMake package `llama` was not found; "
                          "set CMAKE_PREFIX_PATH or TANDEM_LLAMA_PREFIX to its install prefix")
    else()
      message(STATUS "tandem: llama.cpp not found: no tandem::llama_cpp "
                     "(set CMAKE_PREFIX_PATH or TANDEM_LLAMA_PREFIX)")
    endif()
  endif()
endmacro()

# =====================================================================================
# http: tandem::http, the OpenAI-compatible HTTP generator (section owned by that backend)
# =====================================================================================

# No third-party library for plain HTTP: the client is tandem's own (POSIX sockets) and so
# is its JSON. HTTPS needs OpenSSL (Debian: libssl-dev): TANDEM_WITH_HTTP_TLS decides;
# when it is used, tandem::http defines TANDEM_HTTP_OPENSSL and links OpenSSL::SSL.
# (cpp-httplib and nlohmann-json are now only what the tests' fake server is built with:
# tests/CMakeLists.txt finds them.)
if(PROJECT_IS_TOP_LEVEL)
  set(_tandem_http_default AUTO)
else()
  set(_tandem_http_default OFF)
endif()
set(TANDEM_WITH_HTTP "${_tandem_http_default}" CACHE STRING
    "Build tandem::http: AUTO (on POSIX systems), ON (required), OFF")
set_property(CACHE TANDEM_WITH_HTTP PROPERTY STRINGS AUTO ON OFF)
set(TANDEM_WITH_HTTP_TLS AUTO CACHE STRING
    "HTTPS in tandem::http: AUTO (when OpenSSL is found), ON (OpenSSL required), OFF")
set_property(CACHE TANDEM_WITH_HTTP_TLS PROPERTY STRINGS AUTO ON OFF)
unset(_tandem_http_default)

macro(_tandem_backend_http)
  if(NOT TANDEM_WITH_HTTP STREQUAL "OFF")
    if(UNIX)
      find_package(Threads REQUIRED)
      set(_tandem_http_tls OFF)
      if(NOT TANDEM_WITH_HTTP_TLS STREQUAL "OFF")
        find_package(OpenSSL 1.1.1 QUIET COMPONENTS SSL Crypto)
        if(TARGET OpenSSL::SSL)
          set(_tandem_http_tls ON)
        elseif(TANDEM_WITH_HTTP_TLS STREQUAL "ON")
          message(FATAL_ERROR "tandem: TANDEM_WITH_HTTP_TLS=ON but OpenSSL was not found "
                              "(Debian: apt install libssl-dev)")
        endif()
      endif()
      add_library(tandem_http INTERFACE)
      add_library(tandem::http ALIAS tandem_http)
      set_target_properties(tandem_http PROPERTIES EXPORT_NAME http)
      tandem_backend_headers(http _tandem_http_headers)
      target_sources(tandem_http INTERFACE FILE_SET HEADERS BASE_DIRS "${PROJECT_SOURCE_DIR}/include"
                     FILES ${_tandem_http_headers})
      target_link_libraries(tandem_http INTERFACE tandem::tandem Threads::Threads)
      if(_tandem_http_tls)
        target_compile_definitions(tandem_http INTERFACE TANDEM_HTTP_OPENSSL)
        target_link_libraries(tandem_http INTERFACE OpenSSL::SSL OpenSSL::Crypto)
      endif()
      list(APPEND TANDEM_BACKEND_TARGETS tandem_http)
      set(TANDEM_BACKEND_http_CONFIG [[
set(_found FALSE)
find_package(Threads QUIET)
]])
      if(_tandem_http_tls)
        string(APPEND TANDEM_BACKEND_http_CONFIG [[
find_package(OpenSSL 1.1.1 QUIET COMPONENTS SSL Crypto)
if(TARGET Threads::Threads AND TARGET OpenSSL::SSL)
  set(_found TRUE)
endif()
]])
      else()
        string(APPEND TANDEM_BACKEND_http_CONFIG [[
if(TARGET Threads::Threads)
  set(_found TRUE)
endif()
]])
      endif()
      message(STATUS "tandem: tandem::http (HTTPS: ${_tandem_http_tls})")
      unset(_tandem_http_headers)
      unset(_tandem_http_tls)
    elseif(TANDEM_WITH_HTTP STREQUAL "ON")
      message(FATAL_ERROR "tandem: TANDEM_WITH_HTTP=ON but tandem::http needs POSIX sockets")
    else()
      message(STATUS "tandem: not a POSIX system: no tandem::http")
    endif()
  endif()
endmacro()
