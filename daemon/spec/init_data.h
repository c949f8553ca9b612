// The pod's init-data document (guest/protocol/init_data.h, docs/init-data.md), derived from
// its spec and this host's defaults. Its digest is bound at launch (vm_from_spec.h) and is the
// KBS reference value; the same bytes go to the agent over the channel.
#pragma once

#include <string>

#include "daemon/spec/spec.h"
#include "daemon/spec/vm_from_spec.h"
#include "guest/protocol/init_data.h"

namespace confpod::spec {

// The guest's view of the spec: images by digest and disk serial (never host paths, which
// are the host's business and not part of what the tenant pinned), commands, env, secret
// paths, the KBS URL the guest uses (empty without secrets) and the guest network.
guest::InitData init_data_from_spec(const PodSpec& spec, const HostDefaults& host);

// The canonical bytes of init_data_from_spec.
std::string init_data_text(const PodSpec& spec, const HostDefaults& host);

// The disk serial the image of container `index` is attached with.
std::string image_disk_serial(std::size_t index);

}  // namespace confpod::spec
