// A pod's launch plan: the one way its spec becomes a VM. spec + host defaults -> VmConfig ->
// validated -> QEMU argv -> expected launch measurement. CreatePod stores the measurement,
// StartPod launches the argv (and re-checks the measurement), the KBS's reference values come
// from the same VmConfig, so the three can never describe different VMs.
#pragma once

#include <string>
#include <vector>

#include "attest/base/result.h"
#include "daemon/pods/measurement.h"
#include "daemon/spec/spec.h"
#include "daemon/spec/vm_from_spec.h"
#include "vmm/config.h"

namespace confpod::pods {

struct LaunchPlan {
  vmm::VmConfig vm;
  std::vector<std::string> argv;  // the QEMU command line, argv[0] the binary
  std::string measurement;        // expected SNP launch digest / TDX MRTD, hex; "" for tee none
};

// Errors: spec.* (the spec cannot become a VM on this host), vmm.* (the VmConfig is invalid),
// measure.* (the expected measurement cannot be computed; the message names the pod and what
// was being measured).
Result<LaunchPlan> plan_launch(const spec::PodSpec& spec, const spec::HostDefaults& host,
                               Measurer& measurer);
// The plan's first steps only: the validated VmConfig, no argv, nothing measured (no file is
// read). What the KBS's reference values need of a pod that already has its measurement.
Result<vmm::VmConfig> plan_vm(const spec::PodSpec& spec, const spec::HostDefaults& host);

}  // namespace confpod::pods
