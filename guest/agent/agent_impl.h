// Private to guest/agent: the agent's state, shared by agent.cc (the flow, set-up, the event
// loop) and agent_exec.cc (exec sessions the host asks for, each checked against init-data).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attest/base/unique_fd.h"
#include "guest/agent/agent.h"
#include "guest/agent/cgroup.h"
#include "guest/agent/container.h"
#include "guest/agent/exec_input.h"
#include "guest/agent/host_channel.h"
#include "guest/agent/pod_plan.h"
#include "guest/agent/pod_setup.h"
#include "guest/protocol/init_data.h"
#include "guest/protocol/messages.h"

namespace confpod::guest::agent {

using Clock = std::chrono::steady_clock;

// Bytes read from one output pipe after its process exited, so a writer that keeps the pipe
// open (a background child of an exec) cannot hold the loop.
inline constexpr int kMaxDrainChunks = 16;
// Execs at once (each holds pipes and a queue): a host cannot make the agent hoard them.
inline constexpr std::size_t kMaxExecs = 16;

// A container of the pod: its plan and its run.
struct PodContainer : ContainerPlan {
  explicit PodContainer(ContainerPlan plan) : ContainerPlan(std::move(plan)) {}
  UniqueFd cgroup_procs;  // when the pod has cgroups
  pid_t pid = -1;
  bool running = false;
  std::optional<int> status;  // once it exited

  Confinement confinement() const {
    Confinement c;
    c.capabilities = capabilities;
    c.seccomp = seccomp;
    c.cgroup_procs = cgroup_procs ? cgroup_procs.get() : -1;
    return c;
  }
};

struct Child {
  bool is_exec = false;
  std::string container;
  std::uint64_t exec_id = 0;
  UniqueFd out;
  UniqueFd err;
  bool pty = false;
  ExecInput in;  // exec with stdin
};

struct Agent::Impl {
  Impl(HostChannel host_channel, AgentOptions options)
      : channel(std::move(host_channel)), opts(std::move(options)) {}

  HostChannel channel;
  AgentOptions opts;
  bool channel_open = true;
  // channel_reconnects: the host is away until this instant (nothing is read before it).
  Clock::time_point channel_resume{};
  bool host_away_logged = false;
  UniqueFd sigfd;

  std::unique_ptr<EvidenceProvider> provider;
  std::string raw_init_data;
  InitData init;
  PodSecrets secrets;
  std::vector<PodContainer> containers;
  std::map<pid_t, Child> children;
  std::optional<PodCgroups> cgroups;

  bool stopping = false;
  bool killed = false;
  Clock::time_point kill_deadline{};
  std::optional<int> first_failure;
  std::string first_failure_reason;

  // --- channel ---------------------------------------------------------------------------
  void send(const GuestMessage& message) { channel.send(message); }

  void send_status(const std::string& state, const std::string& detail = "");

  void send_error(const std::string& code, const std::string& message);

  // --- setup -----------------------------------------------------------------------------
  int finish(int status, const std::string& reason = "");

  int fail_setup(const std::string& code, const std::string& message);

  // The first host frame, within the timeout; it must be init-data.
  Result<std::string> wait_init_data();

  // The host side of a virtio port went away: start over with a fresh stream when it is back.
  void host_away();

  Result<std::string> disk_path(const std::string& serial);

  Status prepare_images();

  // The cgroup tree, when a container has a limit (else none is needed, and a test root
  // without cgroup2 still runs pods).
  Status setup_cgroups();

  Status start_one(PodContainer& pc);

  // Init containers one by one, each to its end; the first that fails ends the pod before
  // any other container starts. False when the pod must end here.
  bool run_init_containers();

  Status start_all();

  void kill_all(int sig);

  // --- event loop ------------------------------------------------------------------------
  // Reads one chunk from a pipe and forwards it; false when the pipe is finished.
  bool pump(UniqueFd& fd, const std::string& container, const char* stream,
            std::uint64_t exec_id = 0);

  static bool readable(int fd);

  // What an exited process left in its pipes; bounded (see kMaxDrainChunks).
  void drain_one(UniqueFd& fd, const std::string& container, const char* stream,
                 std::uint64_t exec_id);

  void drain(Child& c);

  void on_exit(pid_t pid, int status);

  void reap();

  void begin_shutdown(const std::string& why);

  void handle_exec(const HostMessage& message);

  std::pair<pid_t, Child*> find_exec(std::uint64_t id);

  // exec-input, exec-resize, exec-close: only for an exec the agent started (which init-data
  // allowed); anything else is logged and dropped.
  void handle_exec_control(const HostMessage& message);

  void handle_frame(const std::string& payload);

  void on_channel_readable();

  void on_power_button();

  bool any_running() const;

  void loop();

  int run();
};

}  // namespace confpod::guest::agent
