// The in-guest agent (docs/guest-agent.md, "The agent"): PID 1 of the pod VM.
//
// The host is the guest's adversary: everything that arrives on the channel is hostile. The
// agent acts on init-data only after its digest matched the one the hardware bound at launch
// (SNP HOST_DATA, TDX MRCONFIGID, sample: the kernel command line), and on later host frames
// only as far as that verified init-data allows (exec only with allow_exec, shutdown always,
// since the host can kill the VM anyway).
//
// Flow: hello -> init-data (first frame, within 120 s) -> digest check -> parse -> tee check
// -> "init-data-verified" -> network -> KBS attest + secrets ("attested", "secrets-ready") ->
// verify and unpack each image ("image-verified") -> each container's cgroup (limits) -> init
// containers one by one, each to its end (the first failure ends the pod) -> start the
// containers ("container-started") -> event loop (output, exit, exec with its stdin and pty,
// shutdown, reaping) -> pod-exit with the first non-zero container status (else 0) and its
// reason ("oom") -> poweroff when allowed. Containers run confined (docs/containers.md).
// Failures before the containers run end with an error frame and pod-exit 125.
//
// Error codes on the channel: "agent.protocol", "agent.init_data.timeout",
// "agent.init_data.mismatch", "agent.init_data.invalid", "agent.tee.mismatch",
// "agent.evidence", "agent.network", "agent.kbs", "agent.image", "agent.cgroup",
// "agent.container".
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/base/unique_fd.h"
#include "guest/agent/host_channel.h"
#include "guest/evidence/evidence.h"

namespace confpod::guest::agent {

inline constexpr const char* kAgentName = "confpod-agent 0.1";
// The agent's first frame on every stream: its name and protocol version.
GuestMessage agent_hello();
// The pod's status when it never got its containers running.
inline constexpr int kPodSetupFailed = 125;

struct AgentOptions {
  // Prefix of every path the evidence provider reads (/sys, /dev, /proc); tests: a fake root.
  std::string root = "/";
  // Disk serial -> path of the disk (tests). Serials not here are looked up as
  // <root>/sys/block/vd*/serial -> /dev/vd*.
  std::map<std::string, std::string> disks;
  // Each container's rootfs goes to <state_dir>/containers/<name>/rootfs.
  std::string state_dir = "/run/confpod";
  // In the VM: a tmpfs at <state_dir>/containers/<name> holds each unpacked image.
  bool mount_state_tmpfs = false;
  bool configure_network = true;
  // A mounted cgroup2 where the agent puts each container's limits; "": none (a pod with cpu
  // or memory limits then fails to start, agent.cgroup).
  std::string cgroup_root = "/sys/fs/cgroup";
  // sync + reboot(RB_POWER_OFF) after pod-exit (PID 1 in the VM only).
  bool allow_poweroff = false;
  // An evdev device of the ACPI power button; readable KEY_POWER press -> shutdown (also while
  // waiting for init-data).
  UniqueFd power_button;
  // A virtio-serial port reads end-of-file whenever the host side is not connected, e.g. while
  // confpodd restarts: then EOF is a pause (the agent looks again every channel_retry and
  // starts a fresh frame stream), never the end of the pod. A socket (tests) ends for good.
  bool channel_reconnects = false;
  std::chrono::milliseconds channel_retry{500};
  std::chrono::milliseconds init_data_timeout{std::chrono::seconds(120)};
  // SIGTERM -> SIGKILL grace on shutdown.
  std::chrono::milliseconds stop_grace{std::chrono::seconds(10)};
  // Tests may supply the evidence provider; default: detect_evidence_provider(root).
  std::function<Result<std::unique_ptr<EvidenceProvider>>(const std::string& root)> evidence;
  // Tests may stand in for the KBS: resource -> bytes, with no handshake. Default: KbsClient.
  std::function<Result<Bytes>(const std::string& resource)> secret_source;
};

class Agent {
 public:
  // `channel`: the connected host channel (virtio port, or a socket in tests).
  Agent(UniqueFd channel, AgentOptions options);
  // Any host channel, e.g. HostChannel::listening (vsock): its EOF is then a pause as with a
  // virtio port, so options.channel_reconnects should be set.
  Agent(HostChannel channel, AgentOptions options);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Runs the pod to its end and returns the pod's status (what pod-exit carried). Blocks
  // SIGCHLD for the calling thread (it is read through a signalfd), and reaps every child of
  // the process, so call it from a single-threaded process.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace confpod::guest::agent
