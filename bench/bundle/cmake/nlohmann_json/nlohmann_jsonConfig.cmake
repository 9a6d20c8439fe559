# nlohmann json for a GPU bundle (bench/gpu_bundle.sh): the header-only library carried in
# <bundle>/deps/include, for a machine without nlohmann-json3-dev.
if(NOT TARGET nlohmann_json::nlohmann_json)
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  set_target_properties(nlohmann_json::nlohmann_json PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${CMAKE_CURRENT_LIST_DIR}/../../include")
endif()
set(nlohmann_json_FOUND TRUE)
