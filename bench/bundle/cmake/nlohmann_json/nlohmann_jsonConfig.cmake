# nlohmann json for a GPU bundle: the header-only library carried in <bundle>/deps/include.
include("${CMAKE_CURRENT_LIST_DIR}/../header_only.cmake")
scb_bundle_header_only(nlohmann_json::nlohmann_json)
set(nlohmann_json_FOUND TRUE)
