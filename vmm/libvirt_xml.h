// The libvirt domain XML for a VmConfig: the alternative backend to driving QEMU directly.
// libvirt owns the QEMU monitor, pidfile and process in this mode, so VmConfig's qmp_socket and
// pidfile are not used; everything else maps 1:1 (docs/vmm.md, "libvirt domain XML").
#pragma once

#include <string>
#include <string_view>

#include "attest/base/result.h"
#include "vmm/config.h"

namespace confpod::vmm {

// Validates with validate_vm_config (vmm/qemu_argv.h), then renders. SNP needs libvirt >= 10.5
// (launchSecurity type='sev-snp'), TDX libvirt >= 11.1 (type='tdx'), user-mode port forwards
// libvirt >= 9.2 (passt backend).
Result<std::string> libvirt_domain_xml(const VmConfig& config);

// Escapes &, <, >, ' and " for use in XML text and single- or double-quoted attributes.
std::string xml_escape(std::string_view text);

}  // namespace confpod::vmm
