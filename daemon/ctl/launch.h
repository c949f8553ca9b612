// `confpodctl qemu-argv` and `confpodctl host-probe`: what the daemon would launch, and what
// this host can launch, without a running daemon.
#pragma once

#include <ostream>
#include <string>

namespace confpod::ctl {

struct QemuArgvArgs {
  std::string spec;          // pod spec TOML
  std::string tee_override;  // empty, or none | snp | tdx
};

// Prints the QEMU argv for the pod, one argument per line, and returns kExitOk; a spec that
// does not parse or cannot be launched is kExitRejected with one line naming the problem;
// an unreadable file is kExitUsage.
int qemu_argv(const QemuArgvArgs& args, std::ostream& out, std::ostream& err);

struct HostProbeArgs {
  std::string qemu_binary = "/usr/bin/qemu-system-x86_64";
  // Where confpodd keeps its accelerator verdict (runtime_dir of confpod.toml).
  std::string runtime_dir = "/run/confpod";
  // Given both: boot them under KVM now instead of reading confpodd's verdict.
  std::string guest_kernel;
  std::string guest_initrd;
};

// Prints the host probe as one JSON object; always kExitOk (a host that can run nothing is
// still a successful probe: the JSON says what is missing).
int host_probe(const HostProbeArgs& args, std::ostream& out, std::ostream& err);

}  // namespace confpod::ctl
