// The host end of the agent channel against a hostile guest: a fake agent on the other end
// of a real unix socket (where QEMU's chardev would be) sends broken frames, floods, or
// nothing at all; the link drops it and says why, and it never buffers more than a frame.
#include "daemon/pods/guest_link.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "attest/base/unique_fd.h"
#include "guest/protocol/messages.h"
#include "tests/support/process.h"
#include "vmm/channel.h"

namespace confpod::pods {
namespace {

using namespace std::chrono_literals;

// Records on_violation's reason.
struct Violations {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> reasons;

  std::function<void(const std::string&)> callback() {
    return [this](const std::string& reason) {
      std::lock_guard lock(mu);
      reasons.push_back(reason);
      cv.notify_all();
    };
  }
  std::optional<std::string> wait(std::chrono::milliseconds limit) {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, limit, [&] { return !reasons.empty(); })) return std::nullopt;
    return reasons.front();
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return reasons.size();
  }
};

// A listening socket where the link connects, and the fake agent's end once it did.
class FakeGuest {
 public:
  explicit FakeGuest(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    listener_.reset(fd);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd, 1), 0);
  }
  // Waits for the link to connect.
  vmm::GuestChannel& accept() {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    EXPECT_GE(fd, 0);
    auto channel = vmm::GuestChannel::from_fd(UniqueFd(fd));
    EXPECT_TRUE(channel.ok());
    channel_.emplace(std::move(*channel));
    return *channel_;
  }
  // hello, then the init-data the host sends back.
  void handshake() {
    guest::GuestMessage hello;
    hello.kind = guest::GuestMessage::Kind::kHello;
    hello.agent = "fake-agent";
    ASSERT_TRUE(channel_->write_frame(guest::to_payload(hello), 2s).ok());
    auto init = channel_->read_frame(5s, guest::kMaxFramePayload);
    ASSERT_TRUE(init.ok()) << init.error().describe();
  }
  Status send(const guest::GuestMessage& m) {
    return channel_->write_frame(guest::to_payload(m), 5s);
  }

 private:
  UniqueFd listener_;
  std::optional<vmm::GuestChannel> channel_;
};

guest::GuestMessage output(std::size_t bytes) {
  guest::GuestMessage m;
  m.kind = guest::GuestMessage::Kind::kOutput;
  m.container = "app";
  m.stream = "stdout";
  m.data = std::string(bytes, 'x');
  return m;
}

class GuestLinkTest : public ::testing::Test {
 protected:
  GuestLinkOptions options() {
    GuestLinkOptions o;
    o.address = vmm::ChannelAddress::unix_socket(dir_.path() + "/agent.sock");
    o.dir = dir_.path();
    o.init_data = "version = \"0.1.0\"\n";
    o.on_violation = violations_.callback();
    return o;
  }
  std::string agent_log() { return testing::read_text_file(GuestLink::agent_log(dir_.path())); }
  std::string containers_log() {
    return testing::read_text_file(GuestLink::containers_log(dir_.path()));
  }

  testing::TempDir dir_;
  Violations violations_;
};

TEST_F(GuestLinkTest, AHealthyAgentIsHeardAndNeverDropped) {
  auto o = options();
  FakeGuest guest(o.address.path);
  GuestLink link(o);
  guest.accept();
  guest.handshake();
  ASSERT_TRUE(guest.send(output(5)).ok());
  guest::GuestMessage exit;
  exit.kind = guest::GuestMessage::Kind::kPodExit;
  exit.status = 3;
  ASSERT_TRUE(guest.send(exit).ok());
  ASSERT_TRUE(testing::wait_until([&] { return link.pod_exit_status().has_value(); }, 5s));
  EXPECT_EQ(*link.pod_exit_status(), 3);
  EXPECT_EQ(containers_log(), "xxxxx");
  link.drain(1s);
  EXPECT_EQ(violations_.count(), 0u);
}

TEST_F(GuestLinkTest, MalformedMessageDropsTheGuest) {
  auto o = options();
  FakeGuest guest(o.address.path);
  GuestLink link(o);
  auto& channel = guest.accept();
  guest.handshake();
  ASSERT_TRUE(channel.write_frame("{\"kind\": \"output\", \"data\": 7", 2s).ok());
  auto reason = violations_.wait(5s);
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("malformed message"), std::string::npos) << *reason;
  EXPECT_NE(agent_log().find("malformed message"), std::string::npos) << agent_log();
}

TEST_F(GuestLinkTest, OversizeFrameIsRefusedBeforeItIsBuffered) {
  auto o = options();
  FakeGuest guest(o.address.path);
  GuestLink link(o);
  auto& channel = guest.accept();
  guest.handshake();
  // A length prefix of 1 GiB, then a little: the link must not wait for (or allocate) it.
  const std::string prefix("\x40\x00\x00\x00", 4);
  ASSERT_TRUE(channel.write_all(prefix + "xxxx", 2s).ok());
  auto reason = violations_.wait(5s);
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("exceeds"), std::string::npos) << *reason;
}

TEST_F(GuestLinkTest, AFloodDropsTheGuest) {
  auto o = options();
  o.max_bytes_per_window = 256u << 10;
  o.rate_window = 10s;
  FakeGuest guest(o.address.path);
  GuestLink link(o);
  guest.accept();
  guest.handshake();
  for (int i = 0; i < 40 && violations_.count() == 0; ++i) {
    if (!guest.send(output(guest::kMaxOutputChunk)).ok()) break;  // the link hung up
  }
  auto reason = violations_.wait(5s);
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("flooded the channel"), std::string::npos) << *reason;
  EXPECT_LE(containers_log().size(), std::size_t{256u << 10});
}

TEST_F(GuestLinkTest, AnAgentThatNeverSaysHelloIsDropped) {
  auto o = options();
  o.hello_timeout = 300ms;
  FakeGuest guest(o.address.path);
  GuestLink link(o);
  guest.accept();
  auto reason = violations_.wait(5s);
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("sent nothing for 300 ms"), std::string::npos) << *reason;
}

TEST_F(GuestLinkTest, AnotherFirstMessageThanHelloIsDropped) {
  auto o = options();
  FakeGuest guest(o.address.path);
  GuestLink link(o);
  guest.accept();
  ASSERT_TRUE(guest.send(output(1)).ok());
  auto reason = violations_.wait(5s);
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("not hello"), std::string::npos) << *reason;
}

TEST_F(GuestLinkTest, LogsStopAtTheirLimitWithoutFailingThePod) {
  auto o = options();
  o.max_log_bytes = 4096;
  FakeGuest guest(o.address.path);
  GuestLink link(o);
  guest.accept();
  guest.handshake();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(guest.send(output(1500)).ok());
  guest::GuestMessage exit;
  exit.kind = guest::GuestMessage::Kind::kPodExit;
  ASSERT_TRUE(guest.send(exit).ok());
  ASSERT_TRUE(testing::wait_until([&] { return link.pod_exit_status().has_value(); }, 5s));
  EXPECT_LE(containers_log().size() + agent_log().size(), 4096u + 200u);
  EXPECT_NE(agent_log().find("further output is dropped"), std::string::npos) << agent_log();
  link.drain(1s);
  EXPECT_EQ(violations_.count(), 0u);
}

// The cap holds across links: a pod restarted (a new link on the same files) starts from what
// is already written.
TEST_F(GuestLinkTest, TheLogCapHoldsAcrossLinksOfOnePod) {
  auto o = options();
  o.max_log_bytes = 4096;
  for (int round = 0; round < 2; ++round) {
    std::filesystem::remove(o.address.path);
    FakeGuest guest(o.address.path);
    GuestLink link(o);
    guest.accept();
    guest.handshake();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(guest.send(output(1500)).ok());
    guest::GuestMessage exit;
    exit.kind = guest::GuestMessage::Kind::kPodExit;
    ASSERT_TRUE(guest.send(exit).ok());
    ASSERT_TRUE(testing::wait_until([&] { return link.pod_exit_status().has_value(); }, 5s));
    link.drain(1s);
  }
  // Two rounds of 4500 bytes each: without the carried count this would be ~9 KB.
  EXPECT_LE(containers_log().size() + agent_log().size(), 4096u + 400u);
}

}  // namespace
}  // namespace confpod::pods

namespace confpod::pods {
namespace {

// vsock: the agent listens, so the link keeps connecting while the guest boots, and every
// connection (a daemon restart's re-attach too) is greeted with hello. Over a unix socket
// here, where the same code runs (this machine has no vsock peer a test may reach).
TEST_F(GuestLinkTest, AListeningAgentIsReachedOnceItListensAndGreetsEachLink) {
  auto o = options();
  o.agent_listens = true;
  o.connect_timeout = 100ms;  // QEMU's socket budget: not what bounds a booting guest
  o.hello_timeout = 10s;
  std::optional<FakeGuest> guest;
  {
    GuestLink link(o);
    std::this_thread::sleep_for(600ms);  // "booting": nothing listens yet
    guest.emplace(o.address.path);
    guest->accept();
    guest->handshake();  // hello, then the init-data
    ASSERT_TRUE(guest->send(output(3)).ok());
    ASSERT_TRUE(testing::wait_until([&] { return containers_log() == "xxx"; }, 5s));
  }
  // confpodd restarted: the new link re-attaches, the agent greets it again, and the
  // init-data comes again without waiting for that hello.
  o.reattach = true;
  GuestLink again(o);
  guest->accept();
  guest->handshake();
  guest::GuestMessage exit;
  exit.kind = guest::GuestMessage::Kind::kPodExit;
  exit.status = 4;
  ASSERT_TRUE(guest->send(exit).ok());
  ASSERT_TRUE(testing::wait_until([&] { return again.pod_exit_status().has_value(); }, 5s));
  EXPECT_EQ(*again.pod_exit_status(), 4);
  again.drain(1s);
  EXPECT_EQ(violations_.count(), 0u);
  // Each link heard its own greeting: the re-attached one too.
  const std::string log = agent_log();
  const auto first = log.find("agent: hello (fake-agent)");
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_NE(log.find("agent: hello (fake-agent)", first + 1), std::string::npos) << log;
}

// A guest whose agent never listens is one nobody can talk to: dropped like one that never
// says hello, naming where the link tried.
TEST_F(GuestLinkTest, AListeningAgentThatNeverListensIsDropped) {
  auto o = options();
  o.agent_listens = true;
  o.hello_timeout = 400ms;
  GuestLink link(o);
  auto reason = violations_.wait(5s);
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("did not accept a connection within 400 ms (connect " + o.address.path),
            std::string::npos)
      << *reason;
  EXPECT_NE(agent_log().find("did not accept a connection"), std::string::npos) << agent_log();
}

// Writes to the agent never block their caller (the D-Bus loop, a relay): they queue, up to a
// bound, and an agent that stops reading is dropped once a frame cannot get into the channel.
TEST_F(GuestLinkTest, AnAgentThatStopsReadingIsDroppedAndSendersNeverBlock) {
  auto o = options();
  o.write_timeout = 300ms;
  FakeGuest guest(o.address.path);
  GuestLink link(o);
  guest.accept();
  guest.handshake();
  guest::HostMessage input;
  input.kind = guest::HostMessage::Kind::kExecInput;
  input.id = 1;
  input.data = std::string(32 << 10, 'x');
  ASSERT_TRUE(testing::wait_until([&] { return link.send(input).ok(); }, 5s));
  Status last = ok_status();
  std::size_t accepted = 1;
  while ((last = link.send(input)).ok() && accepted < 10000) ++accepted;
  ASSERT_FALSE(last.ok());
  EXPECT_EQ(last.error().code, "pods.busy") << last.error().describe();
  // About 4 MiB queued (plus what the socket took), never more.
  EXPECT_LE(accepted * input.data.size(), GuestLink::kMaxQueuedWriteBytes + (2u << 20));
  auto reason = violations_.wait(5s);
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("cannot write to the agent"), std::string::npos) << *reason;
  Status after = link.send(input);
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.error().code, "pods.invalid_state");
  EXPECT_EQ(violations_.count(), 1u);
}

}  // namespace
}  // namespace confpod::pods
