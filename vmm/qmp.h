// QMP client: the QEMU Machine Protocol over a unix socket (docs/interop/qmp-spec.rst in QEMU).
//
// One JSON object per line each way. On connect QEMU sends a greeting, the client answers
// qmp_capabilities, then commands are {"execute", "arguments", "id"} and replies carry the
// same "id". Asynchronous events ({"event", "data", "timestamp"}) can arrive between replies;
// the client buffers them so callers can wait for one (SHUTDOWN, POWERDOWN, STOP, RESET...).
//
// Every read has a deadline and every line has a size cap (kQmpMaxLineBytes): the peer's
// sizes are never trusted. Errors:
//   vmm.qmp.connect   socket missing / refused / not a socket
//   vmm.qmp.timeout   no complete answer before the deadline
//   vmm.qmp.closed    QEMU closed the socket (it exited, or another client took over)
//   vmm.qmp.io        read/write failed
//   vmm.qmp.protocol  a line that is not a QMP message (bad JSON, wrong shape, too deep)
//   vmm.qmp.too_long  a line over the cap
//   vmm.qmp.command   QEMU answered the command with an error (message: class: desc)
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/result.h"
#include "attest/base/unique_fd.h"

namespace confpod::vmm {

// Largest line accepted from QEMU. query-qmp-schema, the biggest reply there is, is ~200 KiB.
inline constexpr std::size_t kQmpMaxLineBytes = 16u << 20;
// Deepest JSON nesting accepted (QMP replies nest a handful of levels).
inline constexpr std::size_t kQmpMaxDepth = 64;

struct QmpMessage {
  enum class Kind { kGreeting, kReturn, kError, kEvent };
  Kind kind = Kind::kReturn;
  nlohmann::json id;       // null when absent
  nlohmann::json payload;  // greeting: the "QMP" object; return: "return"; error: "error"; event:
                           // "data" (or null)
  std::string event;       // kEvent: its name
  std::int64_t timestamp_seconds = -1;  // kEvent
  std::int64_t timestamp_microseconds = -1;
};

// Parses one line (without or with its CR LF) into a QmpMessage. Never throws; this is the
// fuzz target (vmm/qmp_fuzz.cc).
Result<QmpMessage> parse_qmp_message(std::string_view line);

struct QmpEvent {
  std::string name;     // "SHUTDOWN", "POWERDOWN", "STOP", "RESET", ...
  nlohmann::json data;  // event data, null when none
  std::int64_t timestamp_seconds = -1;
  std::int64_t timestamp_microseconds = -1;
};

struct QemuVersion {
  int major = 0, minor = 0, micro = 0;
  std::string package;            // distribution suffix, e.g. "Debian 1:7.2+dfsg-7+deb12u18"
  std::string to_string() const;  // "7.2.22"
};

class QmpClient {
 public:
  using Clock = std::chrono::steady_clock;
  // Events buffered at most: past it the oldest are dropped (dropped_events() counts them),
  // so a guest that makes QEMU emit events without end (RTC_CHANGE, ...) cannot grow the
  // daemon's memory. The ones that matter (SHUTDOWN) come last.
  static constexpr std::size_t kMaxBufferedEvents = 256;

  // Connects to QEMU's QMP unix socket, retrying while it does not exist yet or refuses
  // (QEMU creates it while starting), reads the greeting and negotiates capabilities (none).
  static Result<QmpClient> connect(const std::string& socket_path,
                                   std::chrono::milliseconds timeout);
  // Same handshake over an already-connected stream socket (tests feed it a socketpair).
  static Result<QmpClient> handshake(UniqueFd fd, std::chrono::milliseconds timeout);

  QmpClient(QmpClient&&) = default;
  QmpClient& operator=(QmpClient&&) = default;

  // The greeting's "version" object, parsed.
  const QemuVersion& version() const { return version_; }

  // Runs a command and returns its "return" value. Events seen meanwhile are buffered.
  Result<nlohmann::json> execute(const std::string& command,
                                 const nlohmann::json& arguments = nullptr,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Returns the first buffered or arriving event named `name` (removing it and every
  // earlier event from the buffer). vmm.qmp.timeout / vmm.qmp.closed otherwise.
  Result<QmpEvent> wait_event(const std::string& name, std::chrono::milliseconds timeout);
  // Reads whatever QEMU sends until `timeout` or EOF, buffering events. Returns ok on
  // timeout; vmm.qmp.closed once QEMU closed the socket (the buffer keeps its events).
  Status pump(std::chrono::milliseconds timeout);
  // Buffered events in arrival order; the buffer is emptied.
  std::vector<QmpEvent> take_events();
  const std::deque<QmpEvent>& events() const { return events_; }
  std::uint64_t dropped_events() const { return dropped_events_; }
  bool closed() const { return closed_; }
  int fd() const { return fd_.get(); }

  // Conveniences over execute().
  Result<std::string> query_status();  // "running", "paused", "shutdown", "prelaunch", ...
  Status system_powerdown();           // ACPI power button; the guest decides what to do
  Status quit();                       // QEMU exits at once (no guest shutdown)
  Result<std::vector<std::string>> qom_list_types(const std::string& implements = "");
  Result<QemuVersion> query_version();

 private:
  explicit QmpClient(UniqueFd fd) : fd_(std::move(fd)) {}
  // Reads until one complete message is available or the deadline passes.
  Result<QmpMessage> read_message(Clock::time_point deadline);
  Status write_line(const std::string& line, Clock::time_point deadline);
  void buffer_event(QmpMessage&& message);

  UniqueFd fd_;
  std::string buffer_;  // bytes received but not yet split into lines
  std::deque<QmpEvent> events_;
  QemuVersion version_;
  std::uint64_t next_id_ = 1;
  bool closed_ = false;
  std::uint64_t dropped_events_ = 0;
};

// Helpers shared with the supervisor and channel.
namespace detail {
// Connects a SOCK_STREAM unix socket to `path` (non-blocking, CLOEXEC), retrying on ENOENT /
// ECONNREFUSED until the deadline.
Result<UniqueFd> connect_unix(const std::string& path,
                              std::chrono::steady_clock::time_point deadline,
                              const std::string& error_prefix);
// Milliseconds left until `deadline` for poll(), at least 0.
int poll_timeout_ms(std::chrono::steady_clock::time_point deadline);
}  // namespace detail

}  // namespace confpod::vmm
