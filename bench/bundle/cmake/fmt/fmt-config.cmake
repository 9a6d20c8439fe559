# fmt for a GPU bundle: header-only mode from the headers carried in <bundle>/deps/include, so
# the binaries need no libfmt.so. fmt::fmt (what the project links) and fmt::fmt-header-only.
include("${CMAKE_CURRENT_LIST_DIR}/../header_only.cmake")
scb_bundle_header_only(fmt::fmt-header-only FMT_HEADER_ONLY=1)
if(NOT TARGET fmt::fmt)
  add_library(fmt::fmt INTERFACE IMPORTED)
  set_target_properties(fmt::fmt PROPERTIES INTERFACE_LINK_LIBRARIES fmt::fmt-header-only)
endif()
set(fmt_FOUND TRUE)
