// Which accelerator tee-none pods use. /dev/kvm opening is not enough: a host can have it and
// QMP can report KVM enabled while no guest actually runs (a CPU model the host cannot
// provide, a nested setup that stalls). So the check boots the pods' own guest kernel under
// KVM to its first process, which powers the VM off again, and KVM is used only when that
// worked; otherwise TCG, with the reason. SEV-SNP and TDX pods always need KVM and never fall
// back. The verdict is cached (a file in the runtime directory) while QEMU, the guest kernel
// and initrd, the CPU model and /dev/kvm stay the same (docs/hardware.md).
#pragma once

#include <chrono>
#include <string>

#include "attest/base/result.h"
#include "vmm/probe.h"

namespace confpod::vmm {

struct BootCheckOptions {
  std::string qemu_binary = "/usr/bin/qemu-system-x86_64";
  std::string kernel;
  std::string initrd;     // must hold /bin/poweroff (the guest image's busybox has it)
  std::string cpu_model;  // empty: "host" under kvm, "max" under tcg (as pods get)
  std::string accel = "kvm";
  std::chrono::milliseconds timeout{15000};
  std::string scratch_dir;  // empty: $TMPDIR or /tmp
};

// Boots `kernel` + `initrd` with rdinit=/bin/poweroff under `accel` and waits for the guest to
// power off. Returns how long it took when the console shows the kernel ran that init and the
// VM shut down from inside within `timeout`. Error "vmm.boot_check" saying what happened
// instead (QEMU refused to start, with its message; the guest stopped otherwise; no init on
// the console; still running at the timeout).
Result<std::chrono::milliseconds> boot_check(const BootCheckOptions& options);

struct AccelChoice {
  std::string accel;   // "kvm" | "tcg"
  std::string reason;  // one sentence
  bool operator==(const AccelChoice&) const = default;
};

// kvm when /dev/kvm exists and boot_check() under it works; tcg otherwise, saying why.
AccelChoice choose_tee_none_accel(const HostProbe& probe, BootCheckOptions options);

// choose_tee_none_accel() remembered in `cache_file` (JSON with the inputs it depends on);
// a cache written for other inputs, unreadable or malformed is ignored and rewritten.
AccelChoice cached_tee_none_accel(const HostProbe& probe, const BootCheckOptions& options,
                                  const std::string& cache_file);

}  // namespace confpod::vmm
