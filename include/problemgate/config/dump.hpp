#pragma once
#include <string>

#include "problemgate/config/config.hpp"

namespace problemgate::config {

/// The effective configuration as JSON (admin GET /config), with every default filled in.
/// Secrets are redacted: user:password in upstream URLs; the admin token is left out (its
/// file's path is shown). Header *names* used as rate-limit
/// keys are shown; their values never reach the config.
std::string dump_json(const Config& cfg);

}  // namespace problemgate::config
