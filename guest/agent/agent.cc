#include "guest/agent/agent.h"

#include <dirent.h>
#include <linux/input.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/crypto/crypto.h"
#include "guest/agent/agent_impl.h"
#include "guest/agent/cgroup.h"
#include "guest/agent/container.h"
#include "guest/agent/exec_input.h"
#include "guest/agent/host_channel.h"
#include "guest/agent/log.h"
#include "guest/agent/network.h"
#include "guest/agent/pod_plan.h"
#include "guest/agent/pod_setup.h"
#include "guest/kbs_client/kbs_client.h"
#include "guest/oci/archive.h"
#include "guest/protocol/capabilities.h"
#include "guest/protocol/init_data.h"
#include "guest/protocol/messages.h"

namespace confpod::guest::agent {
namespace {

namespace fs = std::filesystem;

// The init-data tee as the evidence provider names it.
std::string provider_tee_for(const std::string& init_data_tee) {
  return init_data_tee == "none" ? "sample" : init_data_tee;
}

}  // namespace

void Agent::Impl::send_status(const std::string& state, const std::string& detail) {
  GuestMessage m;
  m.kind = GuestMessage::Kind::kStatus;
  m.state = state;
  m.detail = detail;
  log("status " + state + (detail.empty() ? "" : " (" + detail + ")"));
  send(m);
}

void Agent::Impl::send_error(const std::string& code, const std::string& message) {
  GuestMessage m;
  m.kind = GuestMessage::Kind::kError;
  m.code = code;
  m.detail = message;
  log("error " + code + ": " + printable(message));
  send(m);
}

int Agent::Impl::finish(int status, const std::string& reason) {
  GuestMessage m;
  m.kind = GuestMessage::Kind::kPodExit;
  m.status = status;
  m.reason = reason;
  log("pod exit status " + std::to_string(status) + (reason.empty() ? "" : " (" + reason + ")"));
  send(m);
  if (opts.allow_poweroff) {
    log("powering off");
    ::sync();
    if (::reboot(RB_POWER_OFF) != 0) log(std::string("reboot: ") + std::strerror(errno));
  }
  return status;
}

int Agent::Impl::fail_setup(const std::string& code, const std::string& message) {
  send_error(code, message);
  return finish(kPodSetupFailed);
}

// The first host frame, within the timeout; it must be init-data.
Result<std::string> Agent::Impl::wait_init_data() {
  auto deadline = Clock::now() + opts.init_data_timeout;
  for (;;) {
    auto next = channel.next();
    if (!next.ok())
      return make_error("agent.protocol", "before init-data: " + next.error().describe());
    if (next->has_value()) {
      auto message = parse_host_message(**next);
      if (!message.ok())
        return make_error("agent.protocol",
                          "first host frame refused: " + message.error().describe());
      if (message->kind != HostMessage::Kind::kInitData)
        return make_error("agent.protocol", "the first host frame must be init-data");
      return std::move(message->init_data);
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0)
      return make_error(
          "agent.init_data.timeout",
          "no init-data within " + std::to_string(opts.init_data_timeout.count()) + " ms");
    // The host channel (unless the host is away) and the power button: a stop requested
    // before init-data arrives must still power the VM off.
    pollfd fds[2] = {{channel.fd(), POLLIN, 0}, {opts.power_button.get(), POLLIN, 0}};
    const bool away = Clock::now() < channel_resume;
    if (away) fds[0].fd = -1;
    if (!opts.power_button) fds[1].fd = -1;
    auto wait = left;
    if (away)
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(channel_resume -
                                                                                  Clock::now()) +
                                std::chrono::milliseconds(1));
    int r = ::poll(fds, 2, static_cast<int>(wait.count()));
    if (r < 0 && errno != EINTR)
      return make_error("agent.protocol", std::string("poll: ") + std::strerror(errno));
    if (r <= 0) continue;
    if (fds[1].revents != 0) {
      on_power_button();
      if (stopping) return make_error("agent.stopped", "powered off before init-data arrived");
    }
    if (fds[0].revents != 0 && !channel.read()) {
      if (!opts.channel_reconnects)
        return make_error("agent.protocol", "channel closed before init-data");
      host_away();
    }
  }
}

// The host side of a virtio port went away: start over with a fresh stream when it is back.
void Agent::Impl::host_away() {
  if (!host_away_logged) log("the host is not connected to the channel; waiting for it");
  host_away_logged = true;
  // Each exec's client was connected through the daemon that went away: no one will read
  // its output or close it, and it would hold one of kMaxExecs for good.
  for (auto& [pid, c] : children) {
    if (!c.is_exec) continue;
    log("exec " + std::to_string(c.exec_id) + " ended: the host went away");
    ::kill(pid, SIGKILL);
  }
  channel.restart();
  channel_resume = Clock::now() + opts.channel_retry;
}

Result<std::string> Agent::Impl::disk_path(const std::string& serial) {
  if (auto it = opts.disks.find(serial); it != opts.disks.end()) return it->second;
  return find_disk_by_serial(opts.root, serial);
}

Status Agent::Impl::prepare_images() {
  for (const auto& c : init.containers) {
    if (!safe_container_name(c.name))
      return make_error("agent.image", "unusable container name \"" + printable(c.name) + "\"");
    CONFPOD_ASSIGN_OR_RETURN(std::string disk, disk_path(c.image.disk));
    CONFPOD_ASSIGN_OR_RETURN(
        oci::ImageConfig config,
        unpack_container_image(c, disk, opts.state_dir, opts.mount_state_tmpfs, init));
    CONFPOD_ASSIGN_OR_RETURN(ContainerPlan plan, plan_container(c, config, secrets.env));
    containers.emplace_back(std::move(plan));
    send_status("image-verified", c.name + " " + c.image.digest);
  }
  return ok_status();
}

// The cgroup tree, when a container has a limit (else none is needed, and a test root
// without cgroup2 still runs pods).
Status Agent::Impl::setup_cgroups() {
  bool limits = false;
  for (const auto& pc : containers) limits = limits || pc.cpu_millis != 0 || pc.memory_mib != 0;
  if (!limits) return ok_status();
  if (opts.cgroup_root.empty())
    return make_error("agent.cgroup",
                      "a container has cpu or memory limits, but this agent has no cgroup2 root");
  CONFPOD_ASSIGN_OR_RETURN(PodCgroups opened, PodCgroups::open(opts.cgroup_root));
  cgroups.emplace(std::move(opened));
  for (auto& pc : containers) {
    CONFPOD_ASSIGN_OR_RETURN(pc.cgroup_procs,
                             cgroups->create(pc.name, pc.cpu_millis, pc.memory_mib));
    if (pc.cpu_millis != 0 || pc.memory_mib != 0)
      log("container " + pc.name + ": cpu.max " + cpu_max_value(pc.cpu_millis) + ", memory.max " +
          (pc.memory_mib != 0 ? std::to_string(pc.memory_mib) + " MiB" : std::string("max")));
  }
  return ok_status();
}

Status Agent::Impl::start_one(PodContainer& pc) {
  ContainerSpec spec;
  spec.name = pc.name;
  spec.hostname = init.pod;
  spec.rootfs = container_rootfs(opts.state_dir, pc.name);
  spec.argv = pc.argv;
  spec.env = pc.env;
  spec.workdir = pc.workdir;
  spec.user = pc.user;
  spec.secrets = secrets.files;
  spec.tmpfs = pc.tmpfs;
  spec.read_only_rootfs = pc.read_only_rootfs;
  spec.confinement = pc.confinement();
  CONFPOD_ASSIGN_OR_RETURN(Process p, start_container(spec));
  pc.pid = p.pid;
  pc.running = true;
  Child child;
  child.container = pc.name;
  child.out = std::move(p.stdout_fd);
  child.err = std::move(p.stderr_fd);
  children.emplace(p.pid, std::move(child));
  send_status("container-started", pc.name);
  return ok_status();
}

// Init containers one by one, each to its end; the first that fails ends the pod before
// any other container starts. False when the pod must end here.
bool Agent::Impl::run_init_containers() {
  for (auto& pc : containers) {
    if (!pc.init) continue;
    if (stopping) return false;
    if (Status s = start_one(pc); !s.ok()) {
      send_error("agent.container", s.error().describe());
      if (!first_failure) first_failure = kPodSetupFailed;
      return false;
    }
    loop();
    if (pc.status.value_or(-1) != 0) {
      log("init container " + pc.name + " failed: the pod's containers do not start");
      return false;
    }
  }
  return !stopping;
}

Status Agent::Impl::start_all() {
  for (auto& pc : containers)
    if (!pc.init) CONFPOD_TRY(start_one(pc));
  return ok_status();
}

void Agent::Impl::kill_all(int sig) {
  for (const auto& pc : containers)
    if (pc.running) ::kill(pc.pid, sig);
}

// Reads one chunk from a pipe and forwards it; false when the pipe is finished.
bool Agent::Impl::pump(UniqueFd& fd, const std::string& container, const char* stream,
                       std::uint64_t exec_id) {
  if (!fd) return false;
  std::string buf(kMaxOutputChunk, '\0');
  ssize_t n;
  do {
    n = ::read(fd.get(), buf.data(), buf.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return true;
  // A pty master reads EIO once the last process holding the terminal is gone.
  if (n <= 0) {
    fd.reset();
    return false;
  }
  buf.resize(static_cast<std::size_t>(n));
  GuestMessage m;
  m.kind = GuestMessage::Kind::kOutput;
  m.id = exec_id;
  m.container = container;
  m.stream = stream;
  m.data = std::move(buf);
  send(m);
  return true;
}

bool Agent::Impl::readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

// What an exited process left in its pipes; bounded (see kMaxDrainChunks).
void Agent::Impl::drain_one(UniqueFd& fd, const std::string& container, const char* stream,
                            std::uint64_t exec_id) {
  for (int i = 0; i < kMaxDrainChunks && fd && readable(fd.get()); ++i)
    if (!pump(fd, container, stream, exec_id)) break;
}

void Agent::Impl::drain(Child& c) {
  drain_one(c.out, c.container, "stdout", c.exec_id);
  drain_one(c.err, c.container, "stderr", c.exec_id);
}

void Agent::Impl::on_exit(pid_t pid, int status) {
  auto it = children.find(pid);
  if (it == children.end()) return;  // an orphan re-parented to us (PID 1): reaped, done
  Child child = std::move(it->second);
  children.erase(it);
  drain(child);
  if (child.is_exec) {
    log("exec " + std::to_string(child.exec_id) + " exited with status " + std::to_string(status));
    GuestMessage r;
    r.kind = GuestMessage::Kind::kExecExit;
    r.id = child.exec_id;
    r.status = status;
    send(r);
    return;
  }
  std::string reason;
  for (auto& pc : containers) {
    if (pc.pid != pid) continue;
    pc.running = false;
    pc.status = status;
    // SIGKILL with a kill in memory.events: the kernel's OOM killer, not someone's kill.
    if (status == 128 + SIGKILL && cgroups && pc.memory_mib != 0 && cgroups->oom_kills(pc.name) > 0)
      reason = "oom";
  }
  if (status != 0 && !first_failure) {
    first_failure = status;
    first_failure_reason = reason;
  }
  log("container " + child.container + " exited with status " + std::to_string(status) +
      (reason.empty() ? "" : " (" + reason + ": over its memory limit)"));
  GuestMessage m;
  m.kind = GuestMessage::Kind::kExit;
  m.container = child.container;
  m.status = status;
  m.reason = reason;
  send(m);
}

void Agent::Impl::reap() {
  signalfd_siginfo info;
  while (::read(sigfd.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
  }
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    on_exit(pid, exit_status(status));
  }
}

void Agent::Impl::begin_shutdown(const std::string& why) {
  if (stopping) return;
  stopping = true;
  log("shutdown: " + why);
  kill_deadline = Clock::now() + opts.stop_grace;
  kill_all(SIGTERM);
}

void Agent::Impl::handle_frame(const std::string& payload) {
  auto message = parse_host_message(payload);
  if (!message.ok()) {
    send_error("agent.protocol", "ignored a host frame: " + message.error().describe());
    return;
  }
  switch (message->kind) {
    case HostMessage::Kind::kInitData:
      // A daemon that re-attached after a restart sends init-data again, not knowing how far
      // the agent got: the same bytes are acknowledged quietly; anything else is refused.
      if (message->init_data == raw_init_data) {
        log("init-data sent again (the host reconnected); unchanged, nothing to do");
        return;
      }
      send_error("agent.protocol", "init-data was already received; ignored a different one");
      return;
    case HostMessage::Kind::kExec:
      handle_exec(*message);
      return;
    case HostMessage::Kind::kExecInput:
    case HostMessage::Kind::kExecResize:
    case HostMessage::Kind::kExecClose:
      handle_exec_control(*message);
      return;
    case HostMessage::Kind::kShutdown:
      begin_shutdown("the host asked");
      return;
  }
}

void Agent::Impl::on_channel_readable() {
  if (!channel.read()) {
    if (opts.channel_reconnects) {
      host_away();
      return;
    }
    channel_open = false;
    if (auto s = channel.finish(); !s.ok() && !channel.failed())
      log("channel: " + s.error().describe());
    begin_shutdown("the channel closed");
    return;
  }
  for (;;) {
    auto next = channel.next();
    if (!next.ok()) {
      // The stream cannot be resynchronised after a bad length: the rest is discarded.
      send_error("agent.protocol",
                 next.error().describe() + "; host frames are ignored from now on");
      return;
    }
    if (!next->has_value()) return;
    handle_frame(**next);
  }
}

void Agent::Impl::on_power_button() {
  input_event events[16];
  ssize_t n = ::read(opts.power_button.get(), events, sizeof events);
  if (n <= 0) {
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) opts.power_button.reset();
    return;
  }
  for (std::size_t i = 0; i < static_cast<std::size_t>(n) / sizeof(input_event); ++i)
    if (events[i].type == EV_KEY && events[i].code == KEY_POWER && events[i].value == 1)
      begin_shutdown("power button");
}

bool Agent::Impl::any_running() const {
  for (const auto& pc : containers)
    if (pc.running) return true;
  return false;
}

void Agent::Impl::loop() {
  while (any_running()) {
    struct PipeRef {
      pid_t pid;
      int which;  // 0 stdout, 1 stderr, 2 stdin (writable)
    };
    std::vector<pollfd> fds;
    std::vector<PipeRef> refs;
    fds.push_back({sigfd.get(), POLLIN, 0});
    int channel_index = -1, button_index = -1;
    const bool host_is_away = Clock::now() < channel_resume;
    if (channel_open && !host_is_away) {
      channel_index = static_cast<int>(fds.size());
      fds.push_back({channel.fd(), POLLIN, 0});
    }
    if (opts.power_button) {
      button_index = static_cast<int>(fds.size());
      fds.push_back({opts.power_button.get(), POLLIN, 0});
    }
    const std::size_t first_pipe = fds.size();
    for (const auto& [pid, c] : children) {
      if (c.out) {
        fds.push_back({c.out.get(), POLLIN, 0});
        refs.push_back({pid, 0});
      }
      if (c.err) {
        fds.push_back({c.err.get(), POLLIN, 0});
        refs.push_back({pid, 1});
      }
      if (c.in.open() && c.in.pending() > 0) {
        fds.push_back({c.in.fd(), POLLOUT, 0});
        refs.push_back({pid, 2});
      }
    }
    int timeout = -1;
    if (stopping && !killed) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(kill_deadline - Clock::now());
      timeout = static_cast<int>(std::max<long long>(0, left.count()));
    }
    if (channel_open && host_is_away) {
      auto back =
          std::chrono::duration_cast<std::chrono::milliseconds>(channel_resume - Clock::now());
      int back_ms = static_cast<int>(std::max<long long>(0, back.count())) + 1;
      timeout = timeout < 0 ? back_ms : std::min(timeout, back_ms);
    }
    int r = ::poll(fds.data(), fds.size(), timeout);
    if (r < 0 && errno != EINTR) {
      log(std::string("poll: ") + std::strerror(errno));
      kill_all(SIGKILL);
      reap();
      continue;
    }
    if (stopping && !killed && Clock::now() >= kill_deadline) {
      log("grace period over: SIGKILL");
      kill_all(SIGKILL);
      killed = true;
    }
    if (r <= 0) continue;
    // Output first, so a process's last words go out before its exit frame.
    for (std::size_t i = first_pipe; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      auto it = children.find(refs[i - first_pipe].pid);
      if (it == children.end()) continue;
      Child& c = it->second;
      switch (refs[i - first_pipe].which) {
        case 0:
          pump(c.out, c.container, "stdout", c.exec_id);
          break;
        case 1:
          pump(c.err, c.container, "stderr", c.exec_id);
          break;
        default:
          c.in.flush();
      }
    }
    if (fds[0].revents != 0) reap();
    if (channel_index >= 0 && fds[channel_index].revents != 0) on_channel_readable();
    if (button_index >= 0 && fds[button_index].revents != 0) on_power_button();
  }
}

GuestMessage agent_hello() {
  GuestMessage hello;
  hello.kind = GuestMessage::Kind::kHello;
  hello.version = kProtocolVersion;
  hello.agent = kAgentName;
  return hello;
}

int Agent::Impl::run() {
  // A listening channel has no host yet and drops this; it greets each host that connects.
  send(agent_hello());

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  sigfd = UniqueFd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!sigfd) return fail_setup("agent.internal", std::string("signalfd: ") + std::strerror(errno));

  auto raw = wait_init_data();
  if (!raw.ok()) return fail_setup(raw.error().code, raw.error().message);
  raw_init_data = std::move(*raw);

  auto detected = opts.evidence ? opts.evidence(opts.root) : detect_evidence_provider(opts.root);
  if (!detected.ok()) return fail_setup("agent.evidence", detected.error().describe());
  provider = std::move(*detected);

  if (auto s = verify_init_data_digest(*provider, raw_init_data); !s.ok())
    return fail_setup(s.error().code, s.error().message);
  auto parsed = parse_init_data(raw_init_data);
  if (!parsed.ok()) return fail_setup("agent.init_data.invalid", parsed.error().describe());
  init = std::move(*parsed);
  if (provider_tee_for(init.tee) != provider->tee())
    return fail_setup("agent.tee.mismatch", "init-data tee \"" + init.tee +
                                                "\" but this guest's evidence is \"" +
                                                provider->tee() + "\"");
  send_status("init-data-verified", "pod " + init.pod);

  if (opts.configure_network && !init.network.address.empty()) {
    if (auto s = configure_guest_network(init.network); !s.ok())
      return fail_setup("agent.network", s.error().message);
    log("network " + init.network.interface + " " + init.network.address +
        (init.network.address6.empty() ? "" : " " + init.network.address6));
  }
  auto fetched = fetch_secrets(init, raw_init_data, *provider, opts.secret_source,
                               [&] { send_status("attested", init.kbs_url); });
  if (!fetched.ok()) return fail_setup("agent.kbs", fetched.error().message);
  secrets.env = std::move(fetched->env);  // `secrets` is empty here
  secrets.files = std::move(fetched->files);
  if (!init.secrets.empty())
    send_status("secrets-ready", std::to_string(init.secrets.size()) + " secrets");
  if (auto s = prepare_images(); !s.ok()) return fail_setup("agent.image", s.error().message);
  if (auto s = setup_cgroups(); !s.ok()) return fail_setup("agent.cgroup", s.error().message);
  if (!run_init_containers()) {
    secrets.clear();
    return finish(first_failure.value_or(0), first_failure_reason);
  }
  if (auto s = start_all(); !s.ok()) {
    send_error("agent.container", s.error().describe());
    kill_all(SIGKILL);
    while (any_running()) {
      pollfd p{sigfd.get(), POLLIN, 0};
      ::poll(&p, 1, 1000);
      reap();
    }
    return finish(kPodSetupFailed);
  }
  // The agent's own copy is no longer needed once every container holds its tmpfs copy.
  secrets.clear();
  loop();
  return finish(first_failure.value_or(0), first_failure_reason);
}

Agent::Agent(UniqueFd channel, AgentOptions options)
    : Agent(HostChannel(std::move(channel)), std::move(options)) {}

Agent::Agent(HostChannel channel, AgentOptions options)
    : impl_(std::make_unique<Impl>(std::move(channel), std::move(options))) {}

Agent::~Agent() = default;

int Agent::run() { return impl_->run(); }

}  // namespace confpod::guest::agent
