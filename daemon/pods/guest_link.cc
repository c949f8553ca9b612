#include "daemon/pods/guest_link.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <utility>

#include "attest/base/unique_fd.h"
#include "daemon/pods/log.h"
#include "guest/protocol/messages.h"
#include "vmm/channel.h"

namespace confpod::pods {
namespace {

using Millis = std::chrono::milliseconds;
constexpr Millis kPollSlice{200};  // how often the reader looks at the stop flag

// The pod's logs: root's alone (0600), never written through a link.
void append(const std::string& path, std::string_view bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  for (std::size_t done = 0; fd && done < bytes.size();) {
    ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

GuestLink::GuestLink(GuestLinkOptions options) : options_(std::move(options)) {
  // The cap is on the files, not this link: what earlier links of the pod (restarts, a daemon
  // restart) wrote counts too, so a guest that floods, is dropped and restarted cannot add
  // another max_log_bytes each time.
  for (const std::string& path : {containers_log(options_.dir), agent_log(options_.dir)}) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec) logged_bytes_ += size;
  }
  thread_ = std::thread([this] { run(); });
}

GuestLink::~GuestLink() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  end_all_execs("the pod stopped");
}

Status GuestLink::send(const guest::HostMessage& message) {
  std::string payload = guest::to_payload(message);
  std::lock_guard lock(write_mu_);
  if (!write_open_)
    return make_error("pods.invalid_state", "the pod's agent channel is not connected");
  if (write_queued_bytes_ + payload.size() > kMaxQueuedWriteBytes)
    return make_error("pods.busy", "the pod's agent is not reading its channel");
  write_queued_bytes_ += payload.size();
  write_queue_.push_back(std::move(payload));
  write_cv_.notify_one();
  return ok_status();
}

void GuestLink::open_writer(const vmm::GuestChannel& channel) {
  UniqueFd fd(::fcntl(channel.fd(), F_DUPFD_CLOEXEC, 0));
  if (!fd) {
    note(std::string("confpodd: cannot duplicate the channel for writing: ") +
         std::strerror(errno));
    return;
  }
  auto wrapped = vmm::GuestChannel::from_fd(std::move(fd));
  if (!wrapped.ok()) {
    note("confpodd: " + wrapped.error().describe());
    return;
  }
  write_channel_.emplace(std::move(*wrapped));
  {
    std::lock_guard lock(write_mu_);
    write_open_ = true;
  }
  writer_ = std::thread([this] { write_loop(); });
}

void GuestLink::close_writer() {
  {
    std::lock_guard lock(write_mu_);
    write_open_ = false;
    write_closing_ = true;
    write_queue_.clear();
    write_queued_bytes_ = 0;
  }
  write_cv_.notify_all();
  // A write blocked on a guest that does not read wakes up with an error (the reader is done
  // with the socket: run() is returning).
  if (write_channel_) ::shutdown(write_channel_->fd(), SHUT_RDWR);
  if (writer_.joinable()) writer_.join();
  write_channel_.reset();
}

void GuestLink::write_loop() {
  for (;;) {
    std::string payload;
    {
      std::unique_lock lock(write_mu_);
      write_cv_.wait(lock, [this] { return write_closing_ || !write_queue_.empty(); });
      if (write_closing_) return;
      payload = std::move(write_queue_.front());
      write_queue_.pop_front();
      write_queued_bytes_ -= payload.size();
    }
    Status written = write_channel_->write_frame(payload, options_.write_timeout);
    if (written.ok()) continue;
    bool ours;
    {
      std::lock_guard lock(write_mu_);
      ours = write_closing_;
      write_open_ = false;
      write_queue_.clear();
      write_queued_bytes_ = 0;
    }
    // Part of a frame may be in the channel: nothing more can be written after it. A channel
    // that QEMU closed is the VM ending, which the reader and the pidfd report.
    if (!ours && written.error().code != "vmm.channel.closed")
      drop("cannot write to the agent: " + written.error().describe());
    return;
  }
}

Status GuestLink::start_exec(const guest::HostMessage& request,
                             std::function<void(bool, const std::string&)> on_response,
                             std::shared_ptr<ExecRelay> relay) {
  {
    std::lock_guard lock(exec_mu_);
    if (execs_.size() >= kMaxSessions)
      return make_error("pods.busy",
                        "the pod has " + std::to_string(kMaxSessions) + " exec sessions already");
    execs_[request.id] = PendingExec{std::move(on_response), std::move(relay), false};
  }
  Status sent = send(request);
  if (!sent.ok()) {
    std::lock_guard lock(exec_mu_);
    // Gone already: end_all_execs() took it and gave on_response its answer; a second one
    // would reply twice to the same D-Bus call.
    if (execs_.erase(request.id) == 0) return ok_status();
  }
  return sent;
}

Status GuestLink::attach(const std::string& container, std::shared_ptr<ExecRelay> relay) {
  std::lock_guard lock(exec_mu_);
  // Sessions whose client left hold a thread and a socket until dropped: drop them first.
  prune_sessions_locked();
  if (attached_.size() >= kMaxSessions)
    return make_error("pods.busy",
                      "the pod has " + std::to_string(kMaxSessions) + " attached clients already");
  attached_.emplace_back(container, std::move(relay));
  return ok_status();
}

void GuestLink::route_exec_response(const guest::GuestMessage& message) {
  std::function<void(bool, const std::string&)> respond;
  std::shared_ptr<ExecRelay> refused;
  {
    std::lock_guard lock(exec_mu_);
    auto it = execs_.find(message.id);
    if (it == execs_.end() || it->second.started) return;
    respond = std::move(it->second.on_response);
    if (message.ok) {
      it->second.started = true;
    } else {
      refused = std::move(it->second.relay);
      execs_.erase(it);
    }
  }
  if (respond) respond(message.ok, message.detail);
  if (refused) {
    refused->failed(message.detail);
    retire({std::move(refused)});
  }
}

void GuestLink::prune_sessions_locked() {
  std::erase_if(draining_, [](const auto& relay) { return relay->drained(); });
  for (auto it = attached_.begin(); it != attached_.end();) {
    if (!it->second->finished()) {
      ++it;
      continue;
    }
    draining_.push_back(std::move(it->second));
    it = attached_.erase(it);
  }
}

void GuestLink::retire(std::vector<std::shared_ptr<ExecRelay>> relays) {
  std::lock_guard lock(exec_mu_);
  std::erase_if(draining_, [](const auto& relay) { return relay->drained(); });
  for (auto& relay : relays) draining_.push_back(std::move(relay));
}

void GuestLink::route_output(const guest::GuestMessage& message) {
  std::vector<std::shared_ptr<ExecRelay>> targets;
  {
    std::lock_guard lock(exec_mu_);
    if (message.id != 0) {
      auto it = execs_.find(message.id);
      if (it != execs_.end() && it->second.started) targets.push_back(it->second.relay);
    } else {
      for (const auto& [container, relay] : attached_)
        if (container.empty() || container == message.container) targets.push_back(relay);
    }
  }
  for (const auto& relay : targets) relay->output(message.stream == "stderr", message.data);
}

void GuestLink::route_exit(const guest::GuestMessage& message) {
  std::vector<std::shared_ptr<ExecRelay>> done;
  std::function<void(bool, const std::string&)> unanswered;
  {
    std::lock_guard lock(exec_mu_);
    if (message.kind == guest::GuestMessage::Kind::kExecExit) {
      auto it = execs_.find(message.id);
      if (it == execs_.end()) return;
      // An exit before the agent answered the request (only a broken agent does that): the
      // caller still gets its one answer.
      if (!it->second.started) unanswered = std::move(it->second.on_response);
      done.push_back(std::move(it->second.relay));
      execs_.erase(it);
    } else {
      // A container's exit ends the attaches to it; those to the whole pod go on.
      for (auto it = attached_.begin(); it != attached_.end();) {
        if (it->first == message.container) {
          done.push_back(std::move(it->second));
          it = attached_.erase(it);
        } else {
          ++it;
        }
      }
    }
    // Relays whose client left are dropped here too.
    prune_sessions_locked();
  }
  if (unanswered) unanswered(false, "the exec ended before the agent answered");
  for (const auto& relay : done) relay->exited(message.status);
  // Kept until their threads have passed the last output and the status to the clients.
  retire(std::move(done));
}

void GuestLink::end_all_execs(const std::string& why) {
  std::map<std::uint64_t, PendingExec> execs;
  std::vector<std::pair<std::string, std::shared_ptr<ExecRelay>>> attached;
  {
    std::lock_guard lock(exec_mu_);
    execs.swap(execs_);
    attached.swap(attached_);
  }
  for (auto& [id, pending] : execs) {
    if (!pending.started && pending.on_response) pending.on_response(false, why);
    pending.relay->failed(why);
  }
  std::vector<std::shared_ptr<ExecRelay>> ended;
  for (auto& [id, pending] : execs) ended.push_back(std::move(pending.relay));
  for (auto& [container, relay] : attached) {
    relay->failed(why);
    ended.push_back(std::move(relay));
  }
  retire(std::move(ended));
}

void GuestLink::drain(std::chrono::milliseconds grace) {
  if (!thread_.joinable()) return;
  // The thread ends by itself at EOF; give it `grace`, then tell it to stop. A channel never
  // reached has nothing buffered (the VM that would serve it is gone).
  auto deadline = std::chrono::steady_clock::now() + (connected_ ? grace : Millis(0));
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

std::string GuestLink::pod_exit_reason() const {
  std::lock_guard lock(mu_);
  return pod_exit_reason_;
}

std::optional<std::int64_t> GuestLink::pod_exit_status() const {
  std::lock_guard lock(mu_);
  return pod_exit_;
}

std::string GuestLink::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

void GuestLink::append_log(const std::string& path, std::string_view bytes) {
  if (logged_bytes_ + bytes.size() > options_.max_log_bytes) {
    if (!log_full_noted_) {
      log_full_noted_ = true;
      append(agent_log(options_.dir), "confpodd: the pod's logs reached " +
                                          std::to_string(options_.max_log_bytes) +
                                          " bytes; further output is dropped\n");
    }
    return;
  }
  logged_bytes_ += bytes.size();
  append(path, bytes);
}

void GuestLink::note(const std::string& line) { append_log(agent_log(options_.dir), line + "\n"); }

void GuestLink::drop(const std::string& reason) {
  // Always written, even past the log limit: it says why the pod failed.
  append(agent_log(options_.dir), "confpodd: " + reason + "; link closed\n");
  if (options_.on_violation && !violated_.exchange(true)) options_.on_violation(reason);
}

void GuestLink::run() {
  struct Finished {
    GuestLink* self;
    ~Finished() {
      std::lock_guard lock(self->mu_);
      self->finished_ = true;
    }
  } finished{this};

  // Connect. QEMU created its chardev socket before its QMP greeting, so that is quick; a
  // listening agent is there only once the guest has booted, which is the hello's budget.
  std::optional<vmm::GuestChannel> channel;
  const auto connect_started = std::chrono::steady_clock::now();
  const Millis connect_budget =
      options_.agent_listens ? options_.hello_timeout : options_.connect_timeout;
  while (!stop_) {
    const auto attempt = std::chrono::steady_clock::now();
    auto connected = vmm::GuestChannel::connect(options_.address, kPollSlice);
    if (connected.ok()) {
      channel.emplace(std::move(*connected));
      connected_ = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= connect_started + connect_budget) {
      if (options_.agent_listens)
        // Like a guest that never says hello: nobody can talk to this VM.
        drop("the agent did not accept a connection within " +
             std::to_string(connect_budget.count()) + " ms (" + connected.error().message + ")");
      else
        note("confpodd: cannot connect to the agent channel: " + connected.error().describe());
      return;
    }
    // An attempt that failed at once (no vsock, no descriptors left) is not retried at once.
    std::this_thread::sleep_until(attempt + kPollSlice);
  }
  if (!channel) return;
  // Whatever way run() ends: no more writes, and every exec learns the pod is gone.
  struct Disconnect {
    GuestLink* self;
    ~Disconnect() {
      self->close_writer();
      self->end_all_execs("the pod stopped");
    }
  } disconnect{this};

  // The flood limit: payload bytes in the current rate window.
  auto window_start = std::chrono::steady_clock::now();
  std::uint64_t window_bytes = 0;

  // Reads one frame, polling the stop flag; nullopt on stop, EOF or error (noted; a guest
  // fault is a violation). A zero budget waits without a deadline.
  auto next_frame = [&](Millis budget) -> std::optional<std::string> {
    auto deadline = std::chrono::steady_clock::now() + budget;
    while (!stop_) {
      auto frame = channel->read_frame(kPollSlice, guest::kMaxFramePayload);
      if (frame.ok()) {
        auto now = std::chrono::steady_clock::now();
        if (now - window_start >= options_.rate_window) {
          window_start = now;
          window_bytes = 0;
        }
        window_bytes += frame->size();
        if (window_bytes > options_.max_bytes_per_window) {
          drop("the agent flooded the channel (more than " +
               std::to_string(options_.max_bytes_per_window) + " bytes in " +
               std::to_string(options_.rate_window.count()) + " ms)");
          return std::nullopt;
        }
        return std::move(*frame);
      }
      if (frame.error().code == "vmm.channel.timeout") {
        if (budget != Millis::zero() && std::chrono::steady_clock::now() >= deadline) {
          drop("the agent sent nothing for " + std::to_string(budget.count()) + " ms");
          return std::nullopt;
        }
        continue;
      }
      if (frame.error().code == "vmm.channel.closed") return std::nullopt;
      // An oversize length, a read error: what the guest sent cannot be a frame.
      drop("channel: " + frame.error().describe());
      return std::nullopt;
    }
    return std::nullopt;
  };
  auto next_message = [&](Millis budget) -> std::optional<guest::GuestMessage> {
    auto frame = next_frame(budget);
    if (!frame) return std::nullopt;
    auto message = guest::parse_guest_message(*frame);
    if (!message.ok()) {
      // A guest that breaks the protocol gets no more of our attention: its pod fails.
      drop("malformed message from the agent: " + message.error().describe());
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
    // Connecting to a listening agent already spent part of the boot's budget.
    const Millis hello_budget =
        options_.agent_listens
            ? std::max(Millis(1), options_.hello_timeout -
                                      std::chrono::duration_cast<Millis>(
                                          std::chrono::steady_clock::now() - connect_started))
            : options_.hello_timeout;
    auto hello = next_message(hello_budget);
    if (!hello) return;
    if (hello->kind != guest::GuestMessage::Kind::kHello) {
      drop("the agent's first message is not hello");
      return;
    }
    if (hello->version != guest::kProtocolVersion) {
      drop("agent speaks protocol version " + std::to_string(hello->version) + ", this daemon " +
           std::to_string(guest::kProtocolVersion));
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

  // Only now may others write: the agent takes nothing before its init-data.
  open_writer(*channel);
  const std::string output_path = containers_log(options_.dir);
  while (!stop_) {
    // Containers may run for months without a word: no deadline between messages.
    auto message = next_message(Millis::zero());
    if (!message) return;
    using Kind = guest::GuestMessage::Kind;
    switch (message->kind) {
      case Kind::kOutput:
        // An exec's output belongs to whoever asked for it, not to the pod's log.
        if (message->id == 0) append_log(output_path, message->data);
        route_output(*message);
        break;
      case Kind::kStatus:
        note("agent: " + message->state + (message->detail.empty() ? "" : ": " + message->detail));
        break;
      case Kind::kExit:
        note("agent: container " + message->container + " exited with status " +
             std::to_string(message->status) +
             (message->reason == "oom" ? " (oom: killed for going over its memory limit)" : ""));
        route_exit(*message);
        break;
      case Kind::kExecExit:
        note("agent: exec " + std::to_string(message->id) + " exited with status " +
             std::to_string(message->status));
        route_exit(*message);
        break;
      case Kind::kPodExit: {
        note("agent: pod exited with status " + std::to_string(message->status) +
             (message->reason.empty() ? "" : " (" + message->reason + ")"));
        std::lock_guard lock(mu_);
        pod_exit_ = message->status;
        pod_exit_reason_ = message->reason;
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
        route_exec_response(*message);
        break;
      case Kind::kHello:
        // After a re-attach, the hello the agent wrote while no daemon was connected (a
        // listening agent's greeting of this connection).
        note("agent: hello (" + message->agent + ")");
        break;
    }
  }
}

}  // namespace confpod::pods
