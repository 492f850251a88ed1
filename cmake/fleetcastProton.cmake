# Qpid Proton's C library (Debian: libqpid-proton11-dev) as the imported
# target Proton::proton, for fleetcast's build and for an installed
# fleetcast::net. Included by path, so nothing is added to the includer's
# module path. Its pkg-config file points one level too high on Debian 12
# (${pcfiledir}/../../include), so the header and library are looked up
# directly. Sets fleetcast_Proton_FOUND.
set(fleetcast_Proton_FOUND FALSE)
if(TARGET Proton::proton)
  set(fleetcast_Proton_FOUND TRUE)
  return()
endif()
find_path(fleetcast_Proton_INCLUDE_DIR proton/connection_driver.h)
find_library(fleetcast_Proton_LIBRARY qpid-proton)
mark_as_advanced(fleetcast_Proton_INCLUDE_DIR fleetcast_Proton_LIBRARY)
if(fleetcast_Proton_INCLUDE_DIR AND fleetcast_Proton_LIBRARY)
  add_library(Proton::proton UNKNOWN IMPORTED)
  set_target_properties(Proton::proton PROPERTIES
    IMPORTED_LOCATION "${fleetcast_Proton_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${fleetcast_Proton_INCLUDE_DIR}")
  set(fleetcast_Proton_FOUND TRUE)
endif()
