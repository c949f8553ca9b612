// confpod-agent: PID 1 of the pod VM (guest/image/init execs it), or a test process.
//
//   confpod-agent [--port-name org.confpod.agent.0] [--channel-socket PATH]
//                 [--listen-socket PATH] [--vsock-port 1024] [--power-button DEV] [--state-dir DIR]
//                 [--root DIR] [--disk SERIAL=PATH]...
//                 [--no-network] [--no-poweroff]
//
// As PID 1 it must never exit (the kernel would panic, and the host would learn nothing
// useful): anything fatal is printed, the disks synced, and the VM powered off.
//
// The channel to the host: the virtio-serial port named --port-name, unless the VM has a
// virtio vsock device (the host chose vsock): then the agent listens on --vsock-port and the
// host connects. --channel-socket and --listen-socket are the tests' unix-socket stand-ins.
#include <fcntl.h>
#include <signal.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "attest/base/bytes.h"
#include "guest/agent/agent.h"
#include "guest/protocol/messages.h"

namespace {

using confpod::Error;
using confpod::make_error;
using confpod::Result;
using confpod::UniqueFd;
namespace fs = std::filesystem;

[[noreturn]] void power_off_forever(const std::string& why) {
  std::fprintf(stderr, "confpod-agent: fatal: %s; powering off\n", why.c_str());
  std::fflush(stderr);
  ::sync();
  ::reboot(RB_POWER_OFF);
  for (;;) ::pause();  // reboot failed: PID 1 still must not exit
}

// /sys/class/virtio-ports/vportNpM/name == name -> /dev/vportNpM. The port appears once the
// virtio_console driver probed it, so this retries for up to 10 s.
Result<UniqueFd> open_virtio_port(const std::string& name) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string last = "no virtio port named " + name + " in /sys/class/virtio-ports";
  for (;;) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/sys/class/virtio-ports", ec)) {
      auto text = confpod::read_text_file((entry.path() / "name").string(), 256);
      if (!text.ok()) continue;
      std::string value = *text;
      while (!value.empty() && (value.back() == '\n' || value.back() == '\0')) value.pop_back();
      if (value != name) continue;
      std::string dev = "/dev/" + entry.path().filename().string();
      UniqueFd fd(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
      if (fd) return fd;
      last = "open " + dev + ": " + std::strerror(errno);
    }
    if (std::chrono::steady_clock::now() >= deadline) return make_error("agent.channel", last);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool pid1 = ::getpid() == 1;
  CLI::App app{"confpod-agent: the in-guest agent of a confpod pod VM"};
  std::string port_name = "org.confpod.agent.0";
  std::string channel_socket;
  std::string listen_socket;
  unsigned vsock_port = confpod::guest::kAgentVsockPort;
  std::string power_button;
  std::string state_dir = "/run/confpod";
  std::string root = "/";
  std::vector<std::string> disks;
  bool no_network = false;
  bool no_poweroff = false;
  app.add_option("--port-name", port_name, "virtio-serial port name of the host channel");
  app.add_option("--channel-socket", channel_socket, "connect to this unix socket instead (tests)");
  app.add_option("--listen-socket", listen_socket,
                 "listen on this unix socket for the host instead (tests)");
  app.add_option("--vsock-port", vsock_port, "vsock port to listen on when the VM has vsock")
      ->check(CLI::Range(1u, 0xFFFFFFFEu));
  app.add_option("--power-button", power_button, "evdev device of the ACPI power button");
  app.add_option("--state-dir", state_dir, "where container root filesystems are unpacked");
  app.add_option("--root", root, "prefix of /sys, /dev, /proc for the evidence provider");
  app.add_option("--disk", disks, "SERIAL=PATH: the disk with this serial (tests)");
  app.add_flag("--no-network", no_network, "do not configure the network");
  app.add_flag("--no-poweroff", no_poweroff, "do not power off when the pod ends");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (pid1) power_off_forever(std::string("bad arguments: ") + e.what());
    return app.exit(e);
  }
  // A closed channel must be an error return, not a signal that kills PID 1.
  ::signal(SIGPIPE, SIG_IGN);

  confpod::guest::agent::AgentOptions options;
  options.root = root;
  options.state_dir = state_dir;
  options.configure_network = !no_network;
  options.allow_poweroff = pid1 && !no_poweroff;
  options.mount_state_tmpfs = pid1;
  for (const auto& disk : disks) {
    auto eq = disk.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == disk.size()) {
      std::string why = "--disk wants SERIAL=PATH, got " + disk;
      if (pid1) power_off_forever(why);
      std::fprintf(stderr, "confpod-agent: %s\n", why.c_str());
      return 2;
    }
    options.disks[disk.substr(0, eq)] = disk.substr(eq + 1);
  }
  if (!power_button.empty()) {
    options.power_button =
        UniqueFd(::open(power_button.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!options.power_button)
      std::fprintf(stderr, "confpod-agent: cannot open power button %s: %s\n", power_button.c_str(),
                   std::strerror(errno));
  }

  using confpod::guest::agent::HostChannel;
  // A virtio port reads EOF while the host is away (confpodd restarting), and a listener takes
  // the host again; a connected socket does not come back.
  options.channel_reconnects = channel_socket.empty();
  std::string channel_name;
  auto open_channel = [&]() -> Result<HostChannel> {
    if (!channel_socket.empty()) {
      channel_name = channel_socket;
      CONFPOD_ASSIGN_OR_RETURN(UniqueFd fd, confpod::guest::agent::connect_unix(channel_socket));
      return HostChannel(std::move(fd));
    }
    if (!listen_socket.empty()) {
      channel_name = "listening on " + listen_socket;
      CONFPOD_ASSIGN_OR_RETURN(UniqueFd fd, confpod::guest::agent::listen_unix(listen_socket));
      return HostChannel::listening(std::move(fd), confpod::guest::agent::agent_hello());
    }
    if (confpod::guest::agent::has_virtio_vsock(root)) {
      channel_name = "listening on vsock port " + std::to_string(vsock_port);
      CONFPOD_ASSIGN_OR_RETURN(UniqueFd fd, confpod::guest::agent::listen_vsock(vsock_port));
      return HostChannel::listening(std::move(fd), confpod::guest::agent::agent_hello());
    }
    channel_name = port_name;
    CONFPOD_ASSIGN_OR_RETURN(UniqueFd fd, open_virtio_port(port_name));
    return HostChannel(std::move(fd));
  };
  auto channel = open_channel();
  if (!channel.ok()) {
    if (pid1) power_off_forever(channel.error().describe());
    std::fprintf(stderr, "confpod-agent: %s\n", channel.error().describe().c_str());
    return 1;
  }
  std::fprintf(stderr, "confpod-agent: channel open (%s)\n", channel_name.c_str());

  int status = 0;
  try {
    confpod::guest::agent::Agent agent(std::move(*channel), std::move(options));
    status = agent.run();
  } catch (const std::exception& e) {
    if (pid1) power_off_forever(std::string("unexpected exception: ") + e.what());
    std::fprintf(stderr, "confpod-agent: unexpected exception: %s\n", e.what());
    return 1;
  }
  if (pid1 && no_poweroff) {
    std::fprintf(stderr, "confpod-agent: pod ended with status %d; --no-poweroff: idling\n",
                 status);
    for (;;) ::pause();
  }
  if (pid1) power_off_forever("the pod ended with status " + std::to_string(status));
  return status;
}
