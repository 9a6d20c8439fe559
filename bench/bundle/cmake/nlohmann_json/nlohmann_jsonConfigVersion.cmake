# The version of the carried headers (gpu_bundle.sh writes it from json.hpp's version macros).
set(PACKAGE_VERSION "@NLOHMANN_VERSION@")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
