// The host end of a pod's agent channel (guest/protocol/messages.h, docs/guest-protocol.md).
//
// One thread per running pod: it connects to QEMU's chardev socket for the virtio-serial
// port, waits for the agent's hello, sends the pod's init-data, then files what the agent
// reports: container output into <pod dir>/containers.log, agent events (status, errors,
// container exits) into <pod dir>/agent.log, and the pod's exit status for the Manager.
// Everything the guest sends is checked (frame size, message shape) and a malformed frame
// ends the link with a line in agent.log; it never brings down the daemon.
//
// After a daemon restart the link re-attaches: it sends init-data again without waiting for a
// hello (the agent may or may not have had it; the same bytes again are a no-op for it).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace confpod::pods {

struct GuestLinkOptions {
  std::string socket_path;  // QEMU's chardev socket (PodPaths::agent_socket)
  std::string dir;          // the pod's runtime directory (log files)
  std::string init_data;    // the canonical init-data bytes (bound at launch)
  bool reattach = false;    // daemon restart: no hello expected, nothing sent
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds hello_timeout{120000};  // TCG boots are slow
};

class GuestLink {
 public:
  explicit GuestLink(GuestLinkOptions options);
  ~GuestLink();  // stop() + join
  GuestLink(const GuestLink&) = delete;
  GuestLink& operator=(const GuestLink&) = delete;

  // Called once QEMU has exited: read what is still buffered (QEMU closed the socket, so
  // the thread sees EOF soon) for at most `grace`, then stop and join.
  void drain(std::chrono::milliseconds grace);

  // The status of the agent's pod-exit message, when it sent one.
  std::optional<std::int64_t> pod_exit_status() const;
  // The code of the agent's last error message ("" if none).
  std::string last_error() const;

  static std::string containers_log(const std::string& dir) { return dir + "/containers.log"; }
  static std::string agent_log(const std::string& dir) { return dir + "/agent.log"; }

 private:
  void run();
  void note(const std::string& line);  // one line into agent.log

  GuestLinkOptions options_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  bool finished_ = false;  // run() returned
  std::optional<std::int64_t> pod_exit_;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace confpod::pods
