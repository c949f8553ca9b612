// The pod manager: confpodd's pod table and lifecycle, independent of D-Bus.
//
// One Manager per daemon. It owns the store (daemon/store), the pods loaded from it and, for
// every pod whose VM runs, the vmm::Supervisor of its QEMU. Everything runs on the thread of
// one sd-event loop, except the two operations that block on QEMU (Supervisor::start until the
// QMP greeting, Supervisor::stop for up to stop_timeout_seconds): those run on a short-lived
// worker thread each and post their result back to the loop (docs/daemon.md explains why).
//
// Every state change is written to the store before the Listener hears of it, so a crash
// (kill -9) at any point leaves the store at the last announced state or the next one.
//
// Errors (codes; daemon/bus/errors.cc maps them to D-Bus error names):
//   pods.not_found       no pod of that name
//   pods.exists          CreatePod with a name already in use (also store.exists)
//   pods.invalid_state   operation not valid in the pod's state (Start on a running pod, ...)
//   pods.no_container    exec/attach names a container the pod does not have
//   pods.exec_refused    the agent refused an exec (its reason is the message)
//   pods.invalid_exec    an exec's command is empty, too long or holds a NUL
//   spec.invalid         the spec does not parse (also: larger than spec::kMaxSpecBytes)
//   vmm.tee_unavailable  the spec's TEE cannot run on this host (also spec.tee)
//   measure.*            the expected launch measurement cannot be computed from the files
//                        confpod.toml names (daemon/pods/measurement.h lists the codes)
//   store.*, vmm.*       from the store / the supervisor (start failures carry QEMU's log tail)
#pragma once

#include <systemd/sd-event.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/result.h"
#include "attest/base/unique_fd.h"
#include "daemon/config/config.h"
#include "daemon/pods/measurement.h"
#include "daemon/store/store.h"
#include "vmm/probe.h"
#include "vmm/supervisor.h"

namespace confpod::net {
class Networking;
}

namespace confpod::pods {

// Which Pod properties changed (docs/dbus-api.md names them).
enum PodChange : unsigned {
  kChangeState = 1u << 0,
  kChangeStartedAt = 1u << 1,
  kChangeExitStatus = 1u << 2,
  kChangeMeasurement = 1u << 3,
};

// Told about pods after the store has the change. Called on the loop thread.
class Listener {
 public:
  virtual ~Listener() = default;
  virtual void pod_added(const store::PodRecord& pod) = 0;
  virtual void pod_changed(const store::PodRecord& pod, unsigned changes) = 0;
  // Called after the row is gone from the store and while find(pod.name) still returns the
  // pod (so a D-Bus layer can still enumerate its interfaces); it is erased right after.
  virtual void pod_removed(const store::PodRecord& pod) = 0;
};

struct ManagerOptions {
  config::DaemonConfig config;
  vmm::HostProbe probe;  // probed once at daemon start-up; CreatePod checks the TEE against it
  // Restart policy back-off: first delay, doubled per consecutive quick failure, capped.
  std::chrono::milliseconds restart_delay{1000};
  std::chrono::milliseconds restart_delay_max{30000};
  // A run at least this long resets the back-off.
  std::chrono::milliseconds restart_reset_after{10000};
  // Supervisor::start waits this long for QEMU's QMP greeting.
  std::chrono::milliseconds qmp_timeout{30000};
  // Supervisor::attach (daemon restart) waits this long per pod.
  std::chrono::milliseconds attach_timeout{5000};
  // How long a freshly started guest's agent has to say hello before the pod fails (a VM
  // nobody can talk to; TCG boots are slow).
  std::chrono::milliseconds agent_hello_timeout{120000};
  // The CPUID signature QEMU gives a "-cpu host" guest, for SNP launch digests; nullopt: this
  // CPU's (CPUID leaf 1, read when first needed). Tests set it.
  std::optional<std::uint32_t> host_cpu_signature;
};

// What a verifier (the KBS) checks a pod's hardware evidence against.
struct ReferenceValues {
  vmm::Tee tee = vmm::Tee::kNone;
  // Hex, as the Measurement property: the SEV-SNP launch digest (report MEASUREMENT) or the
  // TDX MRTD, computed at CreatePod and again at every start.
  std::string measurement;
  // Hex: the init-data digest bound at launch, SNP host_data (SHA-256) or TDX mrconfigid
  // (SHA-384).
  std::string init_data_digest;
  std::uint64_t snp_policy = 0;      // SNP: the guest policy the pod is launched with
  std::uint64_t tdx_attributes = 0;  // TDX: the TD attributes the pod is launched with
};

// Log tails are capped at this many bytes whatever the caller asks for.
inline constexpr std::uint64_t kMaxLogBytes = 1u << 20;

// The bytes made safe for a D-Bus string: valid UTF-8, no NUL (each bad byte becomes U+FFFD).
std::string sanitize_utf8(std::string_view bytes);

// The pods.not_found error for `name` (quoted and escaped: names come from callers), so every
// path that fails to find a pod says the same thing.
Error not_found(std::string_view name);

class Manager {
 public:
  using Done = std::function<void(Status)>;

  // `event` must outlive the Manager. Opens <state_dir>/confpod.db.
  static Result<std::unique_ptr<Manager>> create(sd_event* event, ManagerOptions options);
  ~Manager();  // joins worker threads; leaves every VM running (re-attach design)
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  void set_listener(Listener* listener);

  // `done` runs on the loop once every change stored so far is on disk (store/group_commit.h),
  // with the error if the disk failed: what acknowledges a change (a D-Bus reply) waits here.
  void when_durable(std::function<void(const Status&)> done);
  // Further listeners (the KBS's reference values), told after the main one, in the order
  // added. Each must outlive the Manager or be removed first.
  void add_listener(Listener* listener);
  void remove_listener(Listener* listener);

  // Loads every pod from the store; re-attaches to the QEMU of pods that were starting,
  // running or stopping (running again on success, failed with ExitStatus -1 otherwise).
  // Blocks for at most attach_timeout per such pod; call once, before serving requests.
  Status recover();

  // Parses, checks the TEE, computes the expected launch measurement (SNP launch digest or
  // TDX MRTD of the VM the pod will be launched as; "" for tee none), stores the pod in state
  // "created". A measurement that cannot be computed refuses the pod (measure.*).
  Result<store::PodRecord> create_pod(std::string_view spec_toml);
  // Done once the VM runs (QMP up), or with the start error (the pod is then "failed"). The
  // measurement is computed again first (a cache lookup when the files did not change); a
  // changed value is stored and announced (kChangeMeasurement) before QEMU starts, and a
  // failure refuses the start (the pod keeps its state).
  void start_pod(const std::string& name, Done done);
  // ACPI powerdown, SIGKILL after stop_timeout_seconds. Done once the pod has exited.
  void stop_pod(const std::string& name, Done done);
  // SIGKILL. Done once the pod has exited.
  void kill_pod(const std::string& name, Done done);
  // Only a pod that does not run, unless `force` (which kills it first). Removes the row and
  // the pod's runtime directory. Done once removed.
  void remove_pod(const std::string& name, bool force, Done done);

  // nullptr when absent. Valid until the next call into the Manager or loop iteration.
  const store::PodRecord* find(std::string_view name) const;
  // Ordered by name.
  std::vector<const store::PodRecord*> list() const;
  // The last max_bytes (capped at kMaxLogBytes) of the pod's QEMU log and serial console,
  // as UTF-8 text with a header line per file.
  Result<std::string> pod_log(const std::string& name, std::uint64_t max_bytes) const;

  // --- exec and attach (docs/exec.md) ---
  struct ExecRequest {
    std::string container;             // "": the pod's first (non-init) container
    std::vector<std::string> command;  // 1..256 arguments of at most 4096 bytes, no NUL
    bool tty = false;
    unsigned rows = 0, cols = 0;
  };
  using SessionDone = std::function<void(Result<UniqueFd>)>;
  // Runs a command in a running pod's container. `done` (on the loop thread) gets the
  // client's end of the session socket once the agent started the command; or the agent's
  // refusal (pods.exec_refused: init-data does not allow exec, the container is not running,
  // ...), pods.not_found, pods.no_container, pods.invalid_state (not running),
  // pods.invalid_exec (a bad command). The decision is the agent's alone: confpodd does not
  // look at allow_exec, so no host-side setting can widen what the tenant allowed.
  void exec_pod(const std::string& name, ExecRequest request, SessionDone done);
  // The output of a running pod's container ("": every container) from now on, and its exit
  // status: the client's end of the session socket. pods.not_found, pods.no_container,
  // pods.invalid_state.
  Result<UniqueFd> attach_pod(const std::string& name, const std::string& container);

  std::size_t running_count() const;
  const config::DaemonConfig& config() const;

  // The values the KBS registers for a pod. pods.not_found; pods.invalid_state for tee none
  // (no evidence to check) or a pod without a measurement (stored by a daemon that did not
  // compute one, until its next start); spec.invalid when its stored spec no longer parses.
  Result<ReferenceValues> reference_values(std::string_view name) const;
  // The pod's init-data document, the bytes its VM is launched with and its agent receives
  // (with its network and KBS URL). pods.not_found, spec.invalid, net.*.
  Result<std::string> init_data(std::string_view name) const;
  // The measurement cache's counters (tests, diagnostics).
  Measurer::Stats measurement_stats() const;

  // The pods' networks (daemon/net/networking.h): for the Network objects on D-Bus and the
  // pods' addresses and ports.
  net::Networking& networking();
  const net::Networking& networking() const;

  struct Impl;  // opaque: the pod table, supervisors, worker threads

 private:
  explicit Manager(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace confpod::pods
