// The QEMU command line for a VmConfig: an argv vector (never a shell string) that the
// supervisor passes to execv. Targets QEMU >= 9.1 for SEV-SNP and >= 10.1 for TDX; TEE "none"
// also runs on older QEMU (Debian 12 ships 7.2). See docs/vmm.md for every argument and why.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "attest/base/result.h"
#include "vmm/config.h"

namespace confpod::vmm {

// Checks everything both launch builders (QEMU argv, libvirt XML) rely on: names and paths
// are safe to embed, sizes are in range, and the TEE combination is launchable:
//   vmm.config.name        name empty, too long or outside [A-Za-z0-9._-]
//   vmm.config.resources   vcpus not in 1..256, memory_mib not in 128..1048576
//   vmm.config.accel       accel not "kvm"/"tcg"; snp/tdx without kvm
//   vmm.config.tee         tee none without allow_insecure_tee
//   vmm.config.firmware    snp/tdx without firmware
//   vmm.config.kernel      initrd/cmdline/kernel-hashes without a kernel
//   vmm.config.path        a path that is relative or holds control characters
//   vmm.config.debug       SNP policy bit 19 / TDX attribute bit 0 without allow_debug
//   vmm.config.init_data   SNP host_data / TDX mrconfigid all zero (nothing bound)
//   vmm.config.device      bad channel name, disk serial/format, NIC tap/MAC/forward
//   vmm.config.control     qemu_socket/pidfile/serial_log missing (QEMU argv only)
Status validate_vm_config(const VmConfig& config);

// argv[0] is config.qemu_binary. Never contains -daemonize: the supervisor owns the process.
Result<std::vector<std::string>> qemu_argv(const VmConfig& config);

// How a QEMU argv serves the QMP socket: "-qmp unix:PATH,<this>" or
// "-chardev socket,id=..,path=PATH,<this> -mon chardev=..,mode=control".
// wait=on makes QEMU block early in its start-up until the supervisor has connected. With wait=off,
// QEMU 7.2 races a client that connects while it starts (the chardev is accepted on the main
// thread while the monitor's handlers are installed from its I/O thread): seen here as an
// event before the greeting or a second greeting in about 1 start of 400, and once in CI as a
// greeting that never came.
// Connecting before the monitor exists leaves a single path: one greeting, then events.
inline constexpr const char* kQmpServerOptions = "server=on,wait=on";

// QEMU's option syntax (key=value,key=value) escapes a comma inside a value by doubling it.
std::string qemu_escape_option_value(std::string_view value);

}  // namespace confpod::vmm
