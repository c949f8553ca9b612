#include "daemon/pods/guest_link.h"

#include <fstream>
#include <utility>

#include "daemon/pods/log.h"
#include "guest/protocol/messages.h"
#include "vmm/channel.h"

namespace confpod::pods {
namespace {

using Millis = std::chrono::milliseconds;
constexpr Millis kPollSlice{200};  // how often the reader looks at the stop flag

void append(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

GuestLink::GuestLink(GuestLinkOptions options) : options_(std::move(options)) {
  thread_ = std::thread([this] { run(); });
}

GuestLink::~GuestLink() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void GuestLink::drain(std::chrono::milliseconds grace) {
  if (!thread_.joinable()) return;
  // The thread ends by itself at EOF; give it `grace`, then tell it to stop.
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu_);
      if (finished_) break;
    }
    std::this_thread::sleep_for(Millis(20));
  }
  stop_ = true;
  thread_.join();
}

std::optional<std::int64_t> GuestLink::pod_exit_status() const {
  std::lock_guard lock(mu_);
  return pod_exit_;
}

std::string GuestLink::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

void GuestLink::note(const std::string& line) { append(agent_log(options_.dir), line + "\n"); }

void GuestLink::run() {
  struct Finished {
    GuestLink* self;
    ~Finished() {
      std::lock_guard lock(self->mu_);
      self->finished_ = true;
    }
  } finished{this};

  // Connect (QEMU created the socket before its QMP greeting, so this is quick).
  std::optional<vmm::GuestChannel> channel;
  auto connect_deadline = std::chrono::steady_clock::now() + options_.connect_timeout;
  while (!stop_) {
    auto connected = vmm::GuestChannel::connect(options_.socket_path, kPollSlice * 5);
    if (connected.ok()) {
      channel.emplace(std::move(*connected));
      break;
    }
    if (std::chrono::steady_clock::now() >= connect_deadline) {
      note("confpodd: cannot connect to the agent channel: " + connected.error().describe());
      return;
    }
  }
  if (!channel) return;

  // Reads one frame, polling the stop flag; nullopt on stop, EOF or error (noted). A zero
  // budget waits without a deadline.
  auto next_frame = [&](Millis budget) -> std::optional<std::string> {
    auto deadline = std::chrono::steady_clock::now() + budget;
    while (!stop_) {
      auto frame = channel->read_frame(kPollSlice, guest::kMaxFramePayload);
      if (frame.ok()) return std::move(*frame);
      if (frame.error().code == "vmm.channel.timeout") {
        if (budget != Millis::zero() && std::chrono::steady_clock::now() >= deadline) {
          note("confpodd: the agent sent nothing for " + std::to_string(budget.count()) + " ms");
          return std::nullopt;
        }
        continue;
      }
      if (frame.error().code != "vmm.channel.closed")
        note("confpodd: channel: " + frame.error().describe());
      return std::nullopt;
    }
    return std::nullopt;
  };
  auto next_message = [&](Millis budget) -> std::optional<guest::GuestMessage> {
    auto frame = next_frame(budget);
    if (!frame) return std::nullopt;
    auto message = guest::parse_guest_message(*frame);
    if (!message.ok()) {
      // A guest that breaks the protocol gets no more of our attention; the VM is still
      // stopped and reaped through QEMU as usual.
      note("confpodd: malformed message from the agent, link closed: " +
           message.error().describe());
      return std::nullopt;
    }
    return std::move(*message);
  };

  if (options_.reattach) {
    // The previous daemon may have died before the agent got its init-data: send it again.
    // The agent ignores the same bytes once it has them (and checks them against its evidence
    // if not), so this is safe whatever happened before.
    guest::HostMessage init;
    init.kind = guest::HostMessage::Kind::kInitData;
    init.init_data = options_.init_data;
    Status sent = channel->write_frame(guest::to_payload(init), Millis(10000));
    if (!sent.ok()) note("confpodd: cannot send init-data again: " + sent.error().describe());
  } else {
    auto hello = next_message(options_.hello_timeout);
    if (!hello) return;
    if (hello->kind != guest::GuestMessage::Kind::kHello) {
      note("confpodd: the agent's first message is not hello; link closed");
      return;
    }
    if (hello->version != guest::kProtocolVersion) {
      note("confpodd: agent speaks protocol version " + std::to_string(hello->version) +
           ", this daemon " + std::to_string(guest::kProtocolVersion) + "; link closed");
      return;
    }
    note("agent: hello (" + hello->agent + ")");
    guest::HostMessage init;
    init.kind = guest::HostMessage::Kind::kInitData;
    init.init_data = options_.init_data;
    Status sent = channel->write_frame(guest::to_payload(init), Millis(10000));
    if (!sent.ok()) {
      note("confpodd: cannot send init-data: " + sent.error().describe());
      return;
    }
  }

  const std::string output_path = containers_log(options_.dir);
  while (!stop_) {
    // Containers may run for months without a word: no deadline between messages.
    auto message = next_message(Millis::zero());
    if (!message) return;
    using Kind = guest::GuestMessage::Kind;
    switch (message->kind) {
      case Kind::kOutput:
        append(output_path, message->data);
        break;
      case Kind::kStatus:
        note("agent: " + message->state + (message->detail.empty() ? "" : ": " + message->detail));
        break;
      case Kind::kExit:
        note("agent: container " + message->container + " exited with status " +
             std::to_string(message->status));
        break;
      case Kind::kPodExit: {
        note("agent: pod exited with status " + std::to_string(message->status));
        std::lock_guard lock(mu_);
        pod_exit_ = message->status;
        break;
      }
      case Kind::kError: {
        note("agent: error " + message->code + ": " + message->detail);
        std::lock_guard lock(mu_);
        last_error_ = message->code;
        break;
      }
      case Kind::kResponse:
        note("agent: response to request " + std::to_string(message->id) + ": " +
             (message->ok ? "ok" : "refused") +
             (message->detail.empty() ? "" : " (" + message->detail + ")"));
        break;
      case Kind::kHello:
        // After a re-attach, the hello the agent wrote while no daemon was connected.
        note("agent: hello (" + message->agent + ")");
        break;
    }
  }
}

}  // namespace confpod::pods
