# CLI11 for a GPU bundle (bench/gpu_bundle.sh): the header-only library carried in
# <bundle>/deps/include, for a machine without libcli11-dev.
if(NOT TARGET CLI11::CLI11)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  set_target_properties(CLI11::CLI11 PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${CMAKE_CURRENT_LIST_DIR}/../../include")
endif()
set(CLI11_FOUND TRUE)
