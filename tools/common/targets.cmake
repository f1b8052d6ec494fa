# tandem_tool_common: code that tandem's tools, benchmarks, examples and tests share
# (tools/common: svg_chart.hpp, the SVG chart writer; prompt_list.hpp, the JSON Lines
# prompt-list reader). Not part of the library and never installed. Its include path is
# tools/, so files include "common/svg_chart.hpp". prompt_list.hpp needs nlohmann-json:
# the target links nlohmann_json::nlohmann_json when it is found, and a user of
# prompt_list.hpp checks `TARGET nlohmann_json::nlohmann_json` first.
find_package(nlohmann_json 3 CONFIG QUIET)
add_library(tandem_tool_common INTERFACE)
target_include_directories(tandem_tool_common INTERFACE "${PROJECT_SOURCE_DIR}/tools")
target_link_libraries(tandem_tool_common INTERFACE tandem::tandem)
if(TARGET nlohmann_json::nlohmann_json)
  target_link_libraries(tandem_tool_common INTERFACE nlohmann_json::nlohmann_json)
endif()
