// The host end of a pod's agent channel (guest/protocol/messages.h, docs/guest-protocol.md).
//
// One thread per running pod: it connects to the agent's channel (QEMU's chardev socket for
// the virtio-serial port, or the agent's vsock listener), waits for the agent's hello, sends
// the pod's init-data, then files what the agent reports: container output into
// <pod dir>/containers.log, agent events (status, errors, container exits) into
// <pod dir>/agent.log, and the pod's exit status for the Manager. Everything the guest sends
// is checked (frame size, message shape) and a malformed frame ends the link with a line in
// agent.log; it never brings down the daemon.
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
#include <condition_variable>
#include <cstdint>
#include <deque>
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
#include "vmm/channel.h"

namespace confpod::pods {

struct GuestLinkOptions {
  // QEMU's chardev socket (PodPaths::agent_socket), or the guest's vsock CID and the agent's
  // port (guest::kAgentVsockPort).
  vmm::ChannelAddress address;
  // The agent listens (vsock) rather than QEMU (virtio-serial): the link keeps trying to
  // connect while the guest boots (up to hello_timeout, then the guest is dropped), and the
  // agent greets every connection with hello, a re-attach's too.
  bool agent_listens = false;
  std::string dir;        // the pod's runtime directory (log files)
  std::string init_data;  // the canonical init-data bytes (bound at launch)
  bool reattach = false;  // daemon restart: no hello expected, nothing sent
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds hello_timeout{120000};  // TCG boots are slow
  // Flood limit: at most this many payload bytes in any rate window (64 MiB per 4 s, far above
  // what containers printing through a virtio-serial port under TCG reach).
  std::uint64_t max_bytes_per_window = 64ull << 20;
  std::chrono::milliseconds rate_window{4000};
  // containers.log and agent.log together stop growing here (noted once; what earlier links
  // of the pod wrote counts); the pod keeps running.
  std::uint64_t max_log_bytes = 256ull << 20;
  // How long one frame may take to enter the channel before the guest is dropped (a guest
  // that stops reading its port).
  std::chrono::milliseconds write_timeout{10000};
  // From the link's thread or its writer's, at most once: why the guest was dropped.
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
  // pods.busy past kMaxSessions live attaches (start_exec: past kMaxSessions execs).
  Status attach(const std::string& container, std::shared_ptr<ExecRelay> relay);
  static constexpr std::size_t kMaxSessions = 32;
  // Queues a frame for the agent (exec, exec-input, exec-resize, exec-close), from any thread;
  // never blocks. pods.invalid_state when the channel is down, pods.busy when more than
  // kMaxQueuedWriteBytes wait (the agent stopped reading).
  Status send(const guest::HostMessage& message);
  static constexpr std::size_t kMaxQueuedWriteBytes = 4u << 20;

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
  std::atomic<bool> connected_{false};  // the channel was reached (else nothing to drain)
  mutable std::mutex mu_;
  bool finished_ = false;  // run() returned
  std::optional<std::int64_t> pod_exit_;
  std::string pod_exit_reason_;
  std::string last_error_;
  std::uint64_t logged_bytes_ = 0;  // link thread only
  bool log_full_noted_ = false;     // link thread only

  // Writes after init-data go through one writer thread and a bounded queue: send() never
  // blocks its caller (the D-Bus loop, a relay, the link thread itself), frames are never
  // interleaved, and a write that times out part-way (the channel is then unusable) ends the
  // link instead of leaving a torn frame for the next writer.
  void open_writer(const vmm::GuestChannel& channel);  // link thread, after init-data
  void close_writer();                                 // link thread, at the end of run()
  void write_loop();
  std::mutex write_mu_;
  std::condition_variable write_cv_;
  std::deque<std::string> write_queue_;             // payloads; guarded by write_mu_
  std::size_t write_queued_bytes_ = 0;              // write_mu_
  bool write_open_ = false;                         // write_mu_: the writer takes frames
  bool write_closing_ = false;                      // write_mu_: close_writer() asked it to stop
  std::optional<vmm::GuestChannel> write_channel_;  // a dup of the link's socket
  std::thread writer_;
  std::atomic<bool> violated_{false};  // on_violation told once

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
  // Ended sessions whose relays still pass their last packets to slow clients; dropped once
  // drained (at the latest with the link).
  void retire(std::vector<std::shared_ptr<ExecRelay>> relays);
  // Under exec_mu_: attaches whose client left move to draining_; drained relays go.
  void prune_sessions_locked();
  std::vector<std::shared_ptr<ExecRelay>> draining_;  // exec_mu_

  std::thread thread_;
};

}  // namespace confpod::pods
