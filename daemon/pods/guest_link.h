// The host end of a pod's agent channel (guest/protocol/messages.h, docs/guest-protocol.md).
//
// One thread per running pod: it connects to QEMU's chardev socket for the virtio-serial
// port, waits for the agent's hello, sends the pod's init-data, then files what the agent
// reports: container output into <pod dir>/containers.log, agent events (status, errors,
// container exits) into <pod dir>/agent.log, and the pod's exit status for the Manager.
// Everything the guest sends is checked (frame size, message shape) and a malformed frame
// ends the link with a line in agent.log; it never brings down the daemon.
//
// A guest that breaks the protocol (an oversize or malformed frame, a wrong first message,
// another protocol version), floods the channel (more than max_bytes_per_window in a window),
// or never says hello is dropped: the link ends and on_violation gets the reason, so that the
// Manager fails the pod (kills its VM) instead of keeping a VM nobody can talk to. Memory per
// link is bounded by one frame (guest::kMaxFramePayload); the log files by max_log_bytes.
//
// After a daemon restart the link re-attaches: it sends init-data again without waiting for a
// hello (the agent may or may not have had it; the same bytes again are a no-op for it).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "attest/base/result.h"
#include "daemon/pods/exec_relay.h"
#include "guest/protocol/messages.h"

namespace confpod::vmm {
class GuestChannel;
}

namespace confpod::pods {

struct GuestLinkOptions {
  std::string socket_path;  // QEMU's chardev socket (PodPaths::agent_socket)
  std::string dir;          // the pod's runtime directory (log files)
  std::string init_data;    // the canonical init-data bytes (bound at launch)
  bool reattach = false;    // daemon restart: no hello expected, nothing sent
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds hello_timeout{120000};  // TCG boots are slow
  // Flood limit: at most this many payload bytes in any rate window (64 MiB per 4 s, far above
  // what containers printing through a virtio-serial port under TCG reach).
  std::uint64_t max_bytes_per_window = 64ull << 20;
  std::chrono::milliseconds rate_window{4000};
  // containers.log and agent.log together stop growing here (noted once; what earlier links
  // of the pod wrote counts); the pod keeps running.
  std::uint64_t max_log_bytes = 256ull << 20;
  // From the link's thread, at most once: why the guest was dropped.
  std::function<void(const std::string& reason)> on_violation;
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
  // The reason the agent gave with it ("" or "oom").
  std::string pod_exit_reason() const;
  // The code of the agent's last error message ("" if none).
  std::string last_error() const;

  // --- exec and attach (docs/exec.md) ---
  // Sends an exec request; `on_response` gets the agent's answer on the link's thread (ok:
  // started, else refused with the agent's reason, or the pod ended first). From then on
  // `relay` gets the exec's output and its exit. pods.invalid_state when the channel is down.
  Status start_exec(const guest::HostMessage& request,
                    std::function<void(bool ok, const std::string& detail)> on_response,
                    std::shared_ptr<ExecRelay> relay);
  // Follows the output of one container ("": all of them) from now on, and its exit.
  void attach(const std::string& container, std::shared_ptr<ExecRelay> relay);
  // A frame to the agent (exec-input, exec-resize, exec-close), from any thread.
  Status send(const guest::HostMessage& message);

  static std::string containers_log(const std::string& dir) { return dir + "/containers.log"; }
  static std::string agent_log(const std::string& dir) { return dir + "/agent.log"; }

 private:
  void run();
  void note(const std::string& line);  // one line into agent.log
  // Notes the reason and tells on_violation.
  void drop(const std::string& reason);
  // Appends to a log file unless the logs reached max_log_bytes.
  void append_log(const std::string& path, std::string_view bytes);

  GuestLinkOptions options_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  bool finished_ = false;  // run() returned
  std::optional<std::int64_t> pod_exit_;
  std::string pod_exit_reason_;
  std::string last_error_;
  std::uint64_t logged_bytes_ = 0;  // link thread only
  bool log_full_noted_ = false;     // link thread only

  // The channel while connected (writes from any thread under write_mu_; reads on the link
  // thread only).
  std::mutex write_mu_;
  vmm::GuestChannel* channel_ = nullptr;  // guarded by write_mu_
  void set_channel(vmm::GuestChannel* channel);

  struct PendingExec {
    std::function<void(bool, const std::string&)> on_response;
    std::shared_ptr<ExecRelay> relay;
    bool started = false;
  };
  std::mutex exec_mu_;
  std::map<std::uint64_t, PendingExec> execs_;                                // guarded by exec_mu_
  std::vector<std::pair<std::string, std::shared_ptr<ExecRelay>>> attached_;  // exec_mu_
  // Link thread: hand the agent's exec and container messages to their relays.
  void route_exec_response(const guest::GuestMessage& message);
  void route_output(const guest::GuestMessage& message);
  void route_exit(const guest::GuestMessage& message);
  void end_all_execs(const std::string& why);

  std::thread thread_;
};

}  // namespace confpod::pods
