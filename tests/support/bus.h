// D-Bus test harness: a private system-like bus (a real dbus-daemon) and a real confpodd
// process on it, both owned by the test and torn down when it ends.
//
//   testing::PrivateBus bus;                  // dbus-daemon with a system-bus-like policy
//   testing::DaemonProcess daemon(bus);       // confpodd, everything under a temp dir
//   auto conn = testing::open_bus(bus);       // sd-bus client connection for the test
//   busctl(bus, {"call", "org.confpod1", ...}) // or the real busctl
//
// Policy of the private bus (like /usr/share/dbus-1/system.conf, reduced): any uid may connect
// (the socket lives in a 0755 directory so uid 65534 reaches it), only root may own
// org.confpod1 and user polkitd org.freedesktop.PolicyKit1 (a test's own polkitd), everyone
// may send to them; method calls to other names are denied. Whether a
// caller may *do* something is the daemon's decision (docs/dbus-api.md, "Authorization").
#pragma once

#include <sys/types.h>
#include <systemd/sd-bus.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace confpod::testing {

// The test guest (guest/image/build-initramfs): built or found in its input-keyed cache.
struct GuestImage {
  std::string initrd;
  std::string kernel;
  std::string kernel_version;
};
// Throws std::runtime_error when the image cannot be built.
GuestImage guest_image();

// examples/hello/build-image: the busybox "hello" OCI image archive, written to `path`.
struct OciImage {
  std::string archive;  // absolute path
  std::string digest;   // "sha256:<hex>", the manifest digest to pin
};
// Throws std::runtime_error when the script fails.
OciImage hello_image(const std::string& path);

// The hello image built once per test process (into a directory removed at exit).
const OciImage& shared_hello_image();

// The hello image with tests/support/probe.cc's static confpod-probe at /bin/confpod-probe.
OciImage probe_image(const std::string& path);

// A [[containers]] table that runs the shared hello image's busybox as a long-lived service:
// it prints "ready" (into the pod's containers.log), then runs until SIGTERM, on which it
// exits 0 (so a graceful StopPod ends with ExitStatus 0).
std::string serving_container_toml(const std::string& name = "app");
// The line the serving container prints once it runs.
inline constexpr const char* kServingReady = "ready";

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_loopback_port();

class PrivateBus {
 public:
  PrivateBus();
  ~PrivateBus();
  PrivateBus(const PrivateBus&) = delete;
  PrivateBus& operator=(const PrivateBus&) = delete;

  // "unix:path=/tmp/confpod-bus-XXXXXX/system_bus_socket,guid=..."
  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }

 private:
  std::string dir_;
  std::string address_;
  pid_t pid_ = -1;
};

struct BusDeleter {
  void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};
using BusPtr = std::unique_ptr<sd_bus, BusDeleter>;

// A client connection of the calling process to the private bus (Hello done).
BusPtr open_bus(const PrivateBus& bus);

// Runs /usr/bin/busctl --address=<bus> <args...>. With `as_nobody`, runs it as uid/gid 65534
// with no supplementary groups (setpriv --reuid=65534 --regid=65534 --clear-groups).
ProcessResult busctl(const PrivateBus& bus, const std::vector<std::string>& args,
                     bool as_nobody = false);

struct DaemonOptions {
  bool allow_insecure_tee = true;
  // confpod.toml accel; empty: "tcg" with allow_insecure_tee, else "kvm".
  std::string accel;
  // Appended verbatim to the generated confpod.toml after the top-level keys it writes
  // (state_dir, runtime_dir, accel, allow_insecure_tee, stop_timeout_seconds, guest_kernel,
  // guest_initrd, kernel_cmdline) and before its [kbs] table: other top-level keys, or
  // tables (TOML ends the top level at the first table header).
  std::string extra_toml;
  // [vmm] channel. virtio-serial, which every machine has, unless a test is about vsock: the
  // default "auto" would move every daemon test to vsock on a machine with /dev/vhost-vsock.
  std::string channel = "virtio-serial";
  // More [vmm] keys (backend, libvirt_uri), one per line.
  std::string vmm_toml;
  // The [kbs] table of the generated confpod.toml (the KBS is off unless a test turns it on).
  std::string kbs_toml = "[kbs]\nenabled = false\n";
  // The [network] table (and any [[networks]]). QEMU user networking by default: a daemon
  // that runs in the machine's own network namespace must never create bridges there;
  // tests of bridge networking run it in a namespace of their own (tests/support/netns.h).
  std::string network_toml = "[network]\npod_network = \"user\"\n";
  // A named network namespace (tests/support/netns.h) to run confpodd in; empty: the test's.
  std::string netns;
  // Extra command-line arguments for confpodd.
  std::vector<std::string> extra_args;
  // "NAME=value" entries added to confpodd's environment (e.g. CONFPOD_TEST_CRASH_AT).
  std::vector<std::string> env;
  // Seconds StopPod waits for the guest before SIGKILL (confpod.toml stop_timeout_seconds).
  unsigned stop_timeout_seconds = 20;
  // Leave guest_kernel/guest_initrd out and point guest_builder/guest_agent at the source tree
  // and the built agent, so confpodd builds its guest image itself at start-up.
  bool daemon_builds_guest = false;
};

// A real confpodd process on a PrivateBus. Its config puts everything under dir():
// dir()/confpod.toml, dir()/state (SQLite), dir()/run (runtime_dir: pods/<name>/ with the
// QEMU sockets, pidfile and logs); accel tcg (kvm when !allow_insecure_tee, which confpod.toml
// requires for tcg); guest kernel/initrd from guest_image().
// The daemon's stdout+stderr go to dir()/confpodd.log (log()).
class DaemonProcess {
 public:
  // Starts the daemon and waits until it owns org.confpod1 (throws on failure, with its log).
  explicit DaemonProcess(const PrivateBus& bus, DaemonOptions opts = {});
  // SIGTERM the daemon, then SIGKILL every QEMU it left running under dir() (the daemon
  // deliberately leaves VMs running when it exits).
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_.path(); }
  std::string config_path() const { return dir() + "/confpod.toml"; }
  std::string state_dir() const { return dir() + "/state"; }
  std::string runtime_dir() const { return dir() + "/run"; }

  // SIGKILL the daemon (VMs keep running) and reap it.
  void kill9();
  // SIGTERM + wait (clean exit, VMs keep running). Returns the daemon's exit code.
  int terminate();
  // Starts the daemon again (terminating it first if it runs) and waits until it owns
  // org.confpod1 on the bus.
  void restart();
  // The environment entries (DaemonOptions::env) of the next restart().
  void set_env(std::vector<std::string> env) { opts_.env = std::move(env); }
  // Waits up to `limit` for the daemon to exit on its own; its wait status, or -1.
  int wait_exit(std::chrono::milliseconds limit);
  // Everything the daemon wrote to stdout/stderr so far (all runs).
  const std::string& log();

 private:
  void spawn();
  void wait_for_name();

  const PrivateBus& bus_;
  DaemonOptions opts_;
  TempDir dir_;
  pid_t pid_ = -1;
  std::string log_;
};

// The pid in dir()/run/pods/<name>/qemu.pid, or -1.
pid_t pod_qemu_pid(const DaemonProcess& daemon, const std::string& pod_name);

}  // namespace confpod::testing
