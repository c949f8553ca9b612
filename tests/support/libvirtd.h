// A real libvirtd for tests, running QEMU under TCG as nobody, without touching the machine's
// libvirt. Shared by the libvirt VM tests (vmm/) and the pod manager's libvirt backend tests
// (daemon/pods/). Two modes:
// - session: libvirtd as nobody (qemu+unix:///session), its files in a directory of its own;
// - system: libvirtd as root (qemu+unix:///system), as a host runs it, in a private mount
//   namespace whose /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and
//   /var/log/libvirt are fresh tmpfs (its qemu.conf runs QEMU as nobody with libvirt's DAC
//   labelling) and whose /etc/passwd adds the libvirt-qemu user libvirt's defaults name. Its
//   socket is reached through /proc/<pid>/root.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "tests/support/process.h"

namespace confpod::testing {

class TestLibvirtd {
 public:
  enum class Mode { kSession, kSystem };

  // The uid and gid QEMU runs as under it (nobody).
  static constexpr uid_t kUid = 65534;
  static constexpr gid_t kGid = 65534;

  // Why it cannot run here (not root, libvirtd, setpriv, unshare, QEMU or libvirt's QEMU
  // driver missing), or nullopt.
  static std::optional<std::string> unavailable();

  // Starts it; its files are in a fresh directory that nobody owns (dir()/vm for what its
  // QEMU must read). Check unavailable() first. Stopped by the destructor.
  explicit TestLibvirtd(Mode mode = Mode::kSession);
  ~TestLibvirtd();
  TestLibvirtd(const TestLibvirtd&) = delete;
  TestLibvirtd& operator=(const TestLibvirtd&) = delete;

  bool started() const;
  // System mode only: the mount namespace could not be set up (no CAP_SYS_ADMIN here).
  bool cannot_mount() const;
  const std::string& dir() const { return dir_->path(); }
  std::string uri() const;
  // Session mode, as in a libvirt upgrade: stop() ends libvirtd (SIGTERM) and leaves its
  // QEMUs running; start_again() brings it back on the same directories, where it finds
  // them again. True once it answers.
  void stop();
  bool start_again();
  // The QEMU it runs for domain `name` (its pidfile), or -1.
  pid_t qemu_pid(const std::string& name) const;
  // Its log (for a failing test's output).
  std::string log() const;

 private:
  Mode mode_;
  void spawn();
  bool reap_if_exited();  // a start that failed

  std::unique_ptr<TempDir> dir_;
  std::string socket_;
  std::string run_dir_;  // its /run/libvirt as this process sees it
  pid_t pid_ = -1;
};

}  // namespace confpod::testing
