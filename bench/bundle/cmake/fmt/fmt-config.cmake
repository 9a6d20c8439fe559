# fmt for a GPU bundle (bench/gpu_bundle.sh): header-only, from the headers carried in
# <bundle>/deps/include, so the binaries need no libfmt.so and a machine without libfmt-dev can
# rebuild. Defines fmt::fmt (what the project links) and fmt::fmt-header-only.
if(NOT TARGET fmt::fmt-header-only)
  add_library(fmt::fmt-header-only INTERFACE IMPORTED)
  set_target_properties(fmt::fmt-header-only PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${CMAKE_CURRENT_LIST_DIR}/../../include"
    INTERFACE_COMPILE_DEFINITIONS "FMT_HEADER_ONLY=1")
  add_library(fmt::fmt INTERFACE IMPORTED)
  set_target_properties(fmt::fmt PROPERTIES INTERFACE_LINK_LIBRARIES fmt::fmt-header-only)
endif()
set(fmt_FOUND TRUE)
