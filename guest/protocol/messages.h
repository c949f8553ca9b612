// The host<->guest channel protocol (docs/guest-protocol.md), used by the agent (guest/agent)
// and the daemon (daemon/pods). Versioned, framed JSON messages over the virtio-serial port.
//
// Frame: a 4-byte big-endian payload length, then the payload: one JSON object with a
// "type" member. Every frame is hostile input to its reader: the guest treats the host as
// the adversary (docs/architecture.md, "Trust model") and the host does not trust the guest to be
// well-formed. Sizes are capped before any allocation; unknown types and members are
// refused with an error naming them.
//
// Guest -> host: hello (first, carries the protocol version), status, output, exit,
// pod-exit, error, response, exec-exit.  Host -> guest: init-data (first and once), exec,
// exec-input, exec-resize, exec-close, shutdown.
//
// Exec (docs/exec.md): "exec" asks for a command in a container (with a pty or pipes); the
// agent answers with a "response" (ok: started; else refused, with the reason), then "output"
// frames carrying the exec's id, then "exec-exit" with its status. The host feeds stdin with
// "exec-input" (data, then eof), changes the pty size with "exec-resize" and ends the command
// with "exec-close". The agent honours none of it unless the verified init-data allows exec.
//
// Errors: "guest.frame.too_large", "guest.frame.truncated", "guest.message.invalid".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/result.h"

namespace confpod::guest {

// 2: exec with a pty and stdin (exec-input, exec-resize, exec-close, exec-exit), output of an
//    exec carries its id, exit and pod-exit carry a reason ("oom").
inline constexpr std::uint32_t kProtocolVersion = 2;
// Largest frame payload either side accepts (init-data fits well inside).
inline constexpr std::size_t kMaxFramePayload = 1u << 20;
// The agent's vsock port: where the VM has a virtio vsock device the agent listens on it and
// the host connects to the guest's CID (docs/guest-protocol.md).
inline constexpr std::uint32_t kAgentVsockPort = 1024;
// The agent splits container output into chunks of at most this many bytes.
inline constexpr std::size_t kMaxOutputChunk = 32u << 10;
// Longest "detail" (status, error, response) a reader accepts; to_payload cuts longer ones
// (at a UTF-8 boundary): detail is for people.
inline constexpr std::size_t kMaxDetailBytes = 8u << 10;

// Length prefix + payload. The payload must be at most kMaxFramePayload (a larger one is
// still encoded, and the reader refuses it; one of 4 GiB or more aborts: a programming error).
std::string encode_frame(std::string_view payload);

// Incremental frame reader: feed() bytes as they arrive, next() yields whole payloads.
//
// Memory: feed() checks each frame's length as soon as its 4 length bytes are in and buffers
// nothing past a length over the limit; the buffer holds at most one partial frame plus the
// whole frames not yet taken, so call next() until it yields nullopt after every feed().
class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_payload = kMaxFramePayload) : max_(max_payload) {}
  void feed(std::string_view bytes);
  // A payload, std::nullopt when more bytes are needed, or "guest.frame.too_large" (after
  // which the decoder stays failed: the stream cannot be resynchronised).
  Result<std::optional<std::string>> next();
  // "guest.frame.truncated" when the stream ended inside a frame, else ok.
  Status finish() const;

 private:
  std::size_t max_;
  std::string buffer_;
  bool failed_ = false;
  std::size_t head_ = 0;        // buffer_ offset of the next frame next() returns
  std::size_t scan_ = 0;        // buffer_ offset of the first frame whose length is unchecked
  bool oversize_ = false;       // the frame at scan_ declares more than max_: buffer no more
  std::uint32_t declared_ = 0;  // that frame's declared length, for the error
};

// --- host -> guest ----------------------------------------------------------------------------
struct HostMessage {
  enum class Kind { kInitData, kExec, kExecInput, kExecResize, kExecClose, kShutdown };
  Kind kind = Kind::kShutdown;
  std::string init_data;             // kInitData: the init-data bytes (not yet trusted)
  std::uint64_t id = 0;              // kExec*: request id (> 0), echoed in what answers it
  std::string container;             // kExec
  std::vector<std::string> command;  // kExec
  bool tty = false;                  // kExec: a pty (stdout and stderr are one stream)
  bool stdin_open = false;           // kExec: stdin comes in exec-input frames (else /dev/null)
  std::uint32_t rows = 0, cols = 0;  // kExec (tty), kExecResize: window size, 0..4096
  std::string data;                  // kExecInput: raw bytes (base64 on the wire)
  bool eof = false;                  // kExecInput: no more stdin after `data`
  bool operator==(const HostMessage&) const = default;
};
std::string to_payload(const HostMessage& message);
Result<HostMessage> parse_host_message(std::string_view payload);

// --- guest -> host ----------------------------------------------------------------------------
struct GuestMessage {
  enum class Kind { kHello, kStatus, kOutput, kExit, kPodExit, kError, kResponse, kExecExit };
  Kind kind = Kind::kHello;
  std::uint32_t version = kProtocolVersion;  // kHello
  std::string agent;                         // kHello: "confpod-agent <version>"
  std::string state;        // kStatus: "init-data-verified", "attested", "secrets-ready",
                            // "image-verified", "container-started", ...
  std::string detail;       // kStatus / kError / kResponse: for people
  std::string container;    // kOutput, kExit
  std::string stream;       // kOutput: "stdout" | "stderr"
  std::string data;         // kOutput: raw bytes (base64 on the wire), <= kMaxOutputChunk
  std::int64_t status = 0;  // kExit, kExecExit: exit code or 128+signal; kPodExit: the pod's
  std::string reason;       // kExit, kPodExit: "" or "oom" (killed for its memory limit)
  std::string code;         // kError: stable error code, e.g. "agent.init_data.mismatch"
  std::uint64_t id = 0;     // kResponse, kExecExit; kOutput: the exec's (0: the container's)
  bool ok = false;          // kResponse
  bool operator==(const GuestMessage&) const = default;
};
std::string to_payload(const GuestMessage& message);
// A hello of another protocol version comes back with only its version read (its other
// members are that version's business), so the host can refuse it by version.
Result<GuestMessage> parse_guest_message(std::string_view payload);

}  // namespace confpod::guest
