# CLI11 for a GPU bundle: the header-only library carried in <bundle>/deps/include.
include("${CMAKE_CURRENT_LIST_DIR}/../header_only.cmake")
scb_bundle_header_only(CLI11::CLI11)
set(CLI11_FOUND TRUE)
