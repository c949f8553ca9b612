#include "daemon/pods/launch_plan.h"

#include <utility>

#include "vmm/qemu_argv.h"

namespace confpod::pods {

Result<vmm::VmConfig> plan_vm(const spec::PodSpec& spec, const spec::HostDefaults& host) {
  CONFPOD_ASSIGN_OR_RETURN(vmm::VmConfig vm, spec::vm_config_from_spec(spec, host));
  CONFPOD_TRY(vmm::validate_vm_config(vm));
  return vm;
}

Result<LaunchPlan> plan_launch(const spec::PodSpec& spec, const spec::HostDefaults& host,
                               Measurer& measurer) {
  LaunchPlan plan;
  CONFPOD_ASSIGN_OR_RETURN(plan.vm, plan_vm(spec, host));
  // qemu_argv validates the VmConfig first (vmm::validate_vm_config).
  CONFPOD_ASSIGN_OR_RETURN(plan.argv, vmm::qemu_argv(plan.vm));
  auto measured = measurer.measure(plan.vm);
  if (!measured.ok()) {
    const Error& e = measured.error();
    const char* what = plan.vm.tee == vmm::Tee::kTdx ? "TDX MRTD" : "SEV-SNP launch digest";
    return make_error(
        e.code, "pod " + spec.name + ": cannot compute the expected " + what + ": " + e.message);
  }
  plan.measurement = std::move(*measured);
  return plan;
}

}  // namespace confpod::pods
