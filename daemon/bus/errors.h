// The one place where confpod error codes (attest/base/result.h) become D-Bus error names.
//
//   pods.not_found, store.not_found            org.confpod1.Error.NoSuchPod
//   pods.exists, store.exists                  org.confpod1.Error.PodExists
//   spec.invalid                               org.confpod1.Error.InvalidSpec
//   vmm.tee_unavailable, spec.tee, measure.*   org.confpod1.Error.TeeUnavailable
//   pods.invalid_state                         org.confpod1.Error.InvalidState
//   kbs.resource.path, kbs.resource.size       org.confpod1.Error.InvalidResource
//   kbs.resource.not_found                     org.confpod1.Error.NoSuchResource
//   kbs.reference_values                       org.freedesktop.DBus.Error.InvalidArgs
//   bus.access_denied                          org.freedesktop.DBus.Error.AccessDenied
//   net.not_found                              org.confpod1.Error.NoSuchNetwork
//   net.exists                                 org.confpod1.Error.NetworkExists
//   net.overlap                                org.confpod1.Error.SubnetOverlap
//   net.in_use, net.config                     org.confpod1.Error.NetworkInUse
//   net.port_in_use                            org.confpod1.Error.PortInUse
//   net.invalid                                org.confpod1.Error.InvalidNetwork
//   net.exhausted                              org.confpod1.Error.NetworkExhausted
//   collateral.format, .size, .untrusted,      org.confpod1.Error.InvalidCollateral
//     .issuer_missing, .expired
//   collateral.not_found                       org.confpod1.Error.NoSuchCollateral
//   pods.no_container                          org.confpod1.Error.NoSuchContainer
//   pods.exec_refused                          org.confpod1.Error.ExecRefused
//   pods.invalid_exec                          org.freedesktop.DBus.Error.InvalidArgs
//   anything else                              org.freedesktop.DBus.Error.Failed
//
// The D-Bus error message is the Error's message, except for measure.* and the generic
// Failed, which carry "code: message" so the code is not lost.
#pragma once

#include <systemd/sd-bus.h>

#include <string>
#include <string_view>

#include "attest/base/result.h"

namespace confpod::bus {

inline constexpr const char* kErrorNoSuchPod = "org.confpod1.Error.NoSuchPod";
inline constexpr const char* kErrorPodExists = "org.confpod1.Error.PodExists";
inline constexpr const char* kErrorInvalidSpec = "org.confpod1.Error.InvalidSpec";
inline constexpr const char* kErrorTeeUnavailable = "org.confpod1.Error.TeeUnavailable";
inline constexpr const char* kErrorInvalidState = "org.confpod1.Error.InvalidState";
inline constexpr const char* kErrorInvalidResource = "org.confpod1.Error.InvalidResource";
inline constexpr const char* kErrorNoSuchResource = "org.confpod1.Error.NoSuchResource";
inline constexpr const char* kErrorNoSuchNetwork = "org.confpod1.Error.NoSuchNetwork";
inline constexpr const char* kErrorNetworkExists = "org.confpod1.Error.NetworkExists";
inline constexpr const char* kErrorSubnetOverlap = "org.confpod1.Error.SubnetOverlap";
inline constexpr const char* kErrorNetworkInUse = "org.confpod1.Error.NetworkInUse";
inline constexpr const char* kErrorPortInUse = "org.confpod1.Error.PortInUse";
inline constexpr const char* kErrorInvalidNetwork = "org.confpod1.Error.InvalidNetwork";
inline constexpr const char* kErrorNetworkExhausted = "org.confpod1.Error.NetworkExhausted";
inline constexpr const char* kErrorInvalidCollateral = "org.confpod1.Error.InvalidCollateral";
inline constexpr const char* kErrorNoSuchCollateral = "org.confpod1.Error.NoSuchCollateral";
inline constexpr const char* kErrorNoSuchContainer = "org.confpod1.Error.NoSuchContainer";
// The pod's agent refused an exec: its init-data does not allow exec, or the container is
// not running. The message is the agent's reason.
inline constexpr const char* kErrorExecRefused = "org.confpod1.Error.ExecRefused";
// The state directory's file system is full: nothing was changed; reads still work.
inline constexpr const char* kErrorStorageFull = "org.confpod1.Error.StorageFull";
inline constexpr const char* kErrorInvalidArgs = "org.freedesktop.DBus.Error.InvalidArgs";
inline constexpr const char* kErrorLimitsExceeded = "org.freedesktop.DBus.Error.LimitsExceeded";
inline constexpr const char* kErrorAccessDenied = "org.freedesktop.DBus.Error.AccessDenied";
inline constexpr const char* kErrorFailed = "org.freedesktop.DBus.Error.Failed";

struct BusError {
  std::string name;
  std::string message;
};

BusError to_bus_error(const Error& error);

// Fills `ret` (for a vtable handler to return) and returns the negative value sd-bus expects.
int set_bus_error(sd_bus_error* ret, const Error& error);

// Sends an error reply to `call` (for replies sent after the handler returned).
int reply_bus_error(sd_bus_message* call, const Error& error);

}  // namespace confpod::bus
