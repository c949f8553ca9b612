// One container process: a child in its own mount, PID, UTS and IPC namespaces, pivoted into
// an unpacked image rootfs, with /proc, a minimal /dev and the pod's secrets on tmpfs mounts
// that exist only in the container's mount namespace.
//
// The rootfs comes from an image verified against init-data (guest/oci), so its content is
// the tenant's; still, everything the child mounts inside it (proc, dev, secret directories)
// is mounted after pivot_root, so symlinks in the image resolve inside the new root and can
// never redirect a mount or a secret onto the agent's own filesystem.
//
// Errors: "container.start" (pipes, clone, or a failure in the child before exec, with the
// child's message, e.g. "pivot_root: Invalid argument"), "container.exec" (exec into a
// running container).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/base/unique_fd.h"

namespace confpod::guest::agent {

// Secret bytes that are wiped when they die (they live in the agent's memory only).
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(Bytes bytes) : bytes_(std::move(bytes)) {}
  ~SecretBytes() { wipe(); }
  SecretBytes(const SecretBytes& other) : bytes_(other.bytes_) {}
  SecretBytes& operator=(const SecretBytes& other) {
    if (this != &other) {
      wipe();
      bytes_ = other.bytes_;
    }
    return *this;
  }
  SecretBytes(SecretBytes&&) noexcept = default;
  SecretBytes& operator=(SecretBytes&& other) noexcept {
    if (this != &other) {
      wipe();
      bytes_ = std::move(other.bytes_);
    }
    return *this;
  }
  const Bytes& bytes() const { return bytes_; }

 private:
  void wipe();
  Bytes bytes_;
};

struct SecretFile {
  std::string path;  // absolute, inside the container
  SecretBytes data;
};

// What limits a container's processes (docs/containers.md, "Privileges"), applied to its
// init and to every command exec'd into it, last thing before exec.
struct Confinement {
  // The capability bounding set (numbers). A root process gets exactly these as permitted,
  // effective (inheritable empty); any other user none. No ambient capabilities, no_new_privs on.
  std::vector<int> capabilities;
  // The default seccomp filter (guest/agent/confine.h); false only for seccomp = "unconfined".
  bool seccomp = true;
  // The cgroup the process joins before anything else: an open cgroup.procs of the
  // container's cgroup (borrowed), or -1 for none (no limits).
  int cgroup_procs = -1;
};

struct ContainerSpec {
  std::string name;               // for messages
  std::string hostname;           // the pod name
  std::string rootfs;             // an existing directory holding the unpacked image
  std::vector<std::string> argv;  // argv[0] is looked up in the container's PATH
  std::vector<std::string> env;   // "KEY=value"
  std::string workdir = "/";
  std::string user;  // "", "uid", "uid:gid", "name[:group]" (resolved in the image)
  std::vector<SecretFile> secrets;
  std::vector<std::string> tmpfs;  // directories that get a fresh tmpfs (nosuid, nodev, noexec)
  bool read_only_rootfs = false;   // the image's root is mounted read-only
  Confinement confinement;
};

// A running child: its output (read ends, non-blocking, close-on-exec) and, when asked for,
// its stdin (write end, non-blocking). With a pty, `stdout_fd` and `stdin_fd` are the pty's
// master (stderr goes to the same terminal) and `pty` is true.
struct Process {
  pid_t pid = -1;
  UniqueFd stdout_fd;
  UniqueFd stderr_fd;
  UniqueFd stdin_fd;
  bool pty = false;
};

// Clones the container init and execs the command. Returns once the command was exec'd, or
// the child's own error message when anything before exec failed (the child is reaped then).
Result<Process> start_container(const ContainerSpec& spec);

struct ExecRequest {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string workdir = "/";
  std::string user;  // as ContainerSpec::user: the container's user
  Confinement confinement;
  bool tty = false;  // a pty for stdin, stdout and stderr, with this window size
  unsigned rows = 0, cols = 0;
  bool stdin_open = false;  // without a tty: stdin is a pipe (else /dev/null)
};

// Runs a command inside the namespaces (ipc, uts, pid, mnt) of the running container whose
// init is `container_pid`. The returned pid is an intermediate child of the caller that exits
// with the command's status (code or 128+signal); killing it (SIGKILL) kills the command too.
Result<Process> exec_in_container(pid_t container_pid, const ExecRequest& request);

// Sets a pty's window size (exec-resize).
Status set_window_size(int pty_fd, unsigned rows, unsigned cols);

// waitpid status -> exit code, or 128+signal.
int exit_status(int wait_status);

// Blocking wait for one child (tests, and start failures); returns exit_status().
Result<int> wait_for(pid_t pid);

}  // namespace confpod::guest::agent
