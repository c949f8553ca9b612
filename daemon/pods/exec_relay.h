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
// what the agent sends. Output is never queued in confpodd: a client that does not read (its
// socket buffer full) ends its exec (exec-close, then 'f'), so one slow terminal can neither
// grow confpodd's memory nor stall the pod's channel.
#pragma once

#include <atomic>
#include <cstdint>
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

  // `id`: the exec's id on the channel (0 for an attach, which sends the agent nothing).
  // `relay_end`: confpodd's end of the client's socket pair.
  ExecRelay(std::uint64_t id, UniqueFd relay_end, SendToGuest send);
  ~ExecRelay();  // stops and joins the thread
  ExecRelay(const ExecRelay&) = delete;
  ExecRelay& operator=(const ExecRelay&) = delete;

  // From the link's thread.
  void output(bool is_stderr, std::string_view data);
  void exited(std::int64_t status);
  void failed(const std::string& why);

  // 'x' or 'f' was sent (or the client left): nothing more will come of it.
  bool finished() const { return finished_; }
  std::uint64_t id() const { return id_; }

 private:
  void run();
  // Sends one packet without blocking; false when the client cannot take it.
  bool send_packet(char type, std::string_view payload);
  void finish();

  std::uint64_t id_;
  UniqueFd fd_;
  SendToGuest send_;
  std::mutex send_mu_;  // packets from the link thread and the relay's own
  std::atomic<bool> finished_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Makes the SOCK_SEQPACKET pair: {client end, relay end}.
Result<std::pair<UniqueFd, UniqueFd>> make_exec_socket_pair();

}  // namespace confpod::pods
