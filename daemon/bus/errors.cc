#include "daemon/bus/errors.h"

#include <cerrno>

namespace confpod::bus {

BusError to_bus_error(const Error& error) {
  const std::string& code = error.code;
  if (code == "pods.not_found" || code == "store.not_found")
    return {kErrorNoSuchPod, error.message};
  if (code == "pods.exists" || code == "store.exists") return {kErrorPodExists, error.message};
  if (code == "spec.invalid") return {kErrorInvalidSpec, error.message};
  if (code == "vmm.tee_unavailable" || code == "spec.tee")
    return {kErrorTeeUnavailable, error.message};
  // The expected measurement cannot be computed from the firmware/kernel/initrd/CPU model
  // this host is configured with: the spec is fine, the host cannot launch it verifiably.
  // The code (measure.input, measure.ovmf, ...) stays in the message: it says which part.
  if (code.starts_with("measure.")) return {kErrorTeeUnavailable, error.describe()};
  if (code == "pods.invalid_state") return {kErrorInvalidState, error.message};
  if (code == "kbs.resource.path" || code == "kbs.resource.size")
    return {kErrorInvalidResource, error.message};
  if (code == "kbs.resource.not_found") return {kErrorNoSuchResource, error.message};
  if (code == "kbs.reference_values") return {kErrorInvalidArgs, error.message};
  if (code == "bus.access_denied") return {kErrorAccessDenied, error.message};
  if (code == "net.not_found") return {kErrorNoSuchNetwork, error.message};
  if (code == "net.exists") return {kErrorNetworkExists, error.message};
  // A subnet the host itself already reaches overlaps just as another network's would.
  if (code == "net.overlap" || code == "net.route_conflict")
    return {kErrorSubnetOverlap, error.message};
  if (code == "net.in_use" || code == "net.config") return {kErrorNetworkInUse, error.message};
  if (code == "net.port_in_use") return {kErrorPortInUse, error.message};
  // net.foreign_link: the bridge name is an interface confpodd did not make.
  if (code == "net.invalid" || code == "net.foreign_link")
    return {kErrorInvalidNetwork, error.message};
  if (code == "net.exhausted") return {kErrorNetworkExhausted, error.message};
  if (code == "store.full") return {kErrorStorageFull, error.message};
  if (code == "pods.no_container") return {kErrorNoSuchContainer, error.message};
  if (code == "pods.exec_refused") return {kErrorExecRefused, error.message};
  if (code == "pods.invalid_exec") return {kErrorInvalidArgs, error.message};
  if (code == "pods.busy") return {kErrorLimitsExceeded, error.message};
  if (code == "collateral.not_found") return {kErrorNoSuchCollateral, error.message};
  if (code == "collateral.format" || code == "collateral.size" || code == "collateral.untrusted" ||
      code == "collateral.issuer_missing" || code == "collateral.expired")
    return {kErrorInvalidCollateral, error.message};
  return {kErrorFailed, error.describe()};
}

int set_bus_error(sd_bus_error* ret, const Error& error) {
  BusError e = to_bus_error(error);
  int r = sd_bus_error_set(ret, e.name.c_str(), e.message.c_str());
  return r < 0 ? r : -EIO;
}

int reply_bus_error(sd_bus_message* call, const Error& error) {
  BusError e = to_bus_error(error);
  sd_bus_error bus_error = SD_BUS_ERROR_NULL;
  sd_bus_error_set(&bus_error, e.name.c_str(), e.message.c_str());
  int r = sd_bus_reply_method_error(call, &bus_error);
  sd_bus_error_free(&bus_error);
  return r;
}

}  // namespace confpod::bus
