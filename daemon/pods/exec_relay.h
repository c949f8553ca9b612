// One exec or attach session between a client and a pod's agent (docs/exec.md).
//
// The client holds one end of a SOCK_SEQPACKET pair (passed over D-Bus as a file descriptor),
// the relay the other. Each packet is one type byte and its payload:
//   client -> confpodd   'i' stdin bytes (at most kMaxExecPacket), 'e' end of stdin,
//                        'w' window size: rows, cols (big-endian uint16 each)
//   confpodd -> client   'o' stdout bytes, 'E' stderr bytes, 'x' exit status (big-endian
//                        int32: code, or 128+signal), 'f' why it ended without a status
// After 'x' or 'f' confpodd sends nothing more and closes its end.
//
// The relay's thread reads the client and turns packets into exec-input, exec-resize and,
// when the client goes away, exec-close frames for the agent. The GuestLink's thread hands it
// what the agent sends. What the client's socket cannot take at once waits in a queue of at
// most kMaxQueuedOutput bytes that the relay's thread drains as the client reads; a client
// that falls further behind ends its exec (exec-close, then 'f'), so one slow terminal can
// neither grow confpodd's memory nor stall the pod's channel. 'x' and 'f' wait their turn
// behind the queued output, for at most kFinalPacketTimeout.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "attest/base/result.h"
#include "attest/base/unique_fd.h"
#include "guest/protocol/messages.h"

namespace confpod::pods {

// Largest packet payload either side sends (the agent's output chunk).
inline constexpr std::size_t kMaxExecPacket = guest::kMaxOutputChunk;

class ExecRelay {
 public:
  using SendToGuest = std::function<Status(const guest::HostMessage&)>;
  static constexpr std::size_t kMaxQueuedOutput = 1u << 20;
  static constexpr std::chrono::milliseconds kFinalPacketTimeout{5000};

  // `id`: the exec's id on the channel (0 for an attach, which sends the agent nothing).
  // `relay_end`: confpodd's end of the client's socket pair. Throws std::system_error when
  // no thread can be made.
  ExecRelay(std::uint64_t id, UniqueFd relay_end, SendToGuest send);
  ~ExecRelay();  // stops and joins the thread
  ExecRelay(const ExecRelay&) = delete;
  ExecRelay& operator=(const ExecRelay&) = delete;

  // From the link's thread; none of them blocks.
  void output(bool is_stderr, std::string_view data);
  void exited(std::int64_t status);
  void failed(const std::string& why);

  // 'x' or 'f' was accepted (or the client left): nothing more will come of it.
  bool finished() const { return finished_; }
  // Its thread is done: the final packet went out, the client left, or it gave up waiting.
  bool drained() const { return drained_; }
  std::uint64_t id() const { return id_; }

 private:
  void run();
  // Queues (or sends at once when nothing waits) one packet; false past kMaxQueuedOutput.
  // `final`: 'x' or 'f', after which nothing more is accepted.
  bool enqueue(char type, std::string_view payload, bool final);
  // Sends queued packets until the socket is full; true once the final one went out.
  bool flush();
  void close_to_agent();
  void wake();

  std::uint64_t id_;
  UniqueFd fd_;
  UniqueFd wake_;  // eventfd: output queued, or stop
  SendToGuest send_;
  std::mutex mu_;
  std::deque<std::string> queue_;  // packets for the client; guarded by mu_
  std::size_t queued_bytes_ = 0;   // mu_
  bool final_queued_ = false;      // mu_: 'x' or 'f' is the last in queue_
  std::atomic<bool> finished_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> drained_{false};
  std::thread thread_;
};

// Makes the SOCK_SEQPACKET pair: {client end, relay end}.
Result<std::pair<UniqueFd, UniqueFd>> make_exec_socket_pair();

}  // namespace confpod::pods
