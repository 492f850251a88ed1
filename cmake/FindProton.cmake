# Qpid Proton's C library (Debian: libqpid-proton11-dev) as Proton::proton.
# Its pkg-config file points one level too high on Debian 12
# (${pcfiledir}/../../include), so the header and library are looked up
# directly.
find_path(Proton_INCLUDE_DIR proton/connection_driver.h)
find_library(Proton_LIBRARY qpid-proton)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Proton REQUIRED_VARS Proton_LIBRARY Proton_INCLUDE_DIR)
if(Proton_FOUND AND NOT TARGET Proton::proton)
  add_library(Proton::proton UNKNOWN IMPORTED)
  set_target_properties(Proton::proton PROPERTIES IMPORTED_LOCATION "${Proton_LIBRARY}"
                                                  INTERFACE_INCLUDE_DIRECTORIES "${Proton_INCLUDE_DIR}")
endif()
