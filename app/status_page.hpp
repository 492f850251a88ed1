// status_page: the daemon's status page (app/status_page.html, built into the
// binary), served at / of the admin port.
#pragma once

#include <string_view>

namespace fleetcast::app {

std::string_view status_page_html() noexcept;

}  // namespace fleetcast::app
