// A real libvirtd for tests: session mode as nobody, in a directory of its own (no system
// libvirtd, no change to the machine's libvirt), running QEMU under TCG. Shared by the libvirt
// VM tests (vmm/) and the pod manager's libvirt backend tests (daemon/pods/).
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "tests/support/process.h"

namespace confpod::testing {

class SessionLibvirtd {
 public:
  // The uid and gid QEMU runs as under it (nobody).
  static constexpr uid_t kUid = 65534;
  static constexpr gid_t kGid = 65534;

  // Why it cannot run here (not root, libvirtd, setpriv, QEMU or libvirt's QEMU driver
  // missing), or nullopt.
  static std::optional<std::string> unavailable();

  // Starts it; its files are in a fresh directory that nobody owns (dir()/vm for what its
  // QEMU must read). Check unavailable() first. Stopped by the destructor.
  SessionLibvirtd();
  ~SessionLibvirtd();
  SessionLibvirtd(const SessionLibvirtd&) = delete;
  SessionLibvirtd& operator=(const SessionLibvirtd&) = delete;

  bool started() const;
  const std::string& dir() const { return dir_->path(); }
  std::string uri() const;
  // The QEMU it runs for domain `name` (its pidfile), or -1.
  pid_t qemu_pid(const std::string& name) const;
  // Its log (for a failing test's output).
  std::string log() const;

 private:
  std::unique_ptr<TempDir> dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

}  // namespace confpod::testing
