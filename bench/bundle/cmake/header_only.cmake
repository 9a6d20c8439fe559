# The one shape of every dependency a GPU bundle carries (bench/gpu_bundle.sh): a header-only
# library whose headers lie in <bundle>/deps/include, so a machine without our Debian -dev
# packages can rebuild. scb_bundle_header_only(TARGET [COMPILE_DEFINITION...]).
set(SCB_BUNDLE_INCLUDE "${CMAKE_CURRENT_LIST_DIR}/../include")
function(scb_bundle_header_only target)
  if(NOT TARGET ${target})
    add_library(${target} INTERFACE IMPORTED)
    set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${SCB_BUNDLE_INCLUDE}"
                                               INTERFACE_COMPILE_DEFINITIONS "${ARGN}")
  endif()
endfunction()
