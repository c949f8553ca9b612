// The confpodctl verbs for attestation collateral (org.confpod1.Broker, docs/collateral.md):
//   collateral import PATH...  ImportCollateral for each file (a directory: each regular file
//                              in it); prints one line per item: added|present ID KIND SUBJECT
//   collateral ls              ListCollateral as a table; what expires within 30 days (or has
//                              expired) is marked
//   collateral rm ID...        RemoveCollateral (an id or a unique prefix of 4+ digits)
// Exit codes as the pod verbs (pods.h): 1 when the daemon refused any file or id (the others
// are still done), 2 when a file cannot be read or the daemon cannot be reached.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "attest/base/time.h"
#include "daemon/ctl/pods.h"

namespace confpod::ctl {

int collateral_import(const BusArgs& bus, const std::vector<std::string>& paths, std::ostream& out,
                      std::ostream& err);
int collateral_list(const BusArgs& bus, UnixSeconds now, std::ostream& out, std::ostream& err);
int collateral_remove(const BusArgs& bus, const std::vector<std::string>& ids, std::ostream& out,
                      std::ostream& err);

// "2026-01-31" and, within `warn_days` of `now`, " (in 12 days)" / " (EXPIRED)".
std::string expiry_text(UnixSeconds not_after, UnixSeconds now, int warn_days = 30);

}  // namespace confpod::ctl
