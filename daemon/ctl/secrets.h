// The confpodctl verbs for the KBS resources (org.confpod1.Broker, docs/cli.md):
//   secret put PATH FILE|-   SetResource with the file's bytes (or stdin), at most 1 MiB
//   secret rm PATH           DeleteResource
//   secret ls                ListResources, one path a line
// Exit codes as the pod verbs (pods.h); an unreadable or oversize input is kExitUsage. The
// value is never printed.
#pragma once

#include <ostream>
#include <string>

#include "daemon/ctl/pods.h"

namespace confpod::ctl {

int secret_put(const BusArgs& bus, const std::string& path, const std::string& file,
               std::ostream& out, std::ostream& err);
int secret_remove(const BusArgs& bus, const std::string& path, std::ostream& out,
                  std::ostream& err);
int secret_list(const BusArgs& bus, std::ostream& out, std::ostream& err);

}  // namespace confpod::ctl
