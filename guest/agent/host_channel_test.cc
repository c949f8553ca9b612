#include "guest/agent/host_channel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "guest/agent/test_rootfs.h"

namespace confpod::guest::agent {
namespace {

struct Pair {
  UniqueFd agent, host;
  Pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    agent = UniqueFd(fds[0]);
    host = UniqueFd(fds[1]);
  }
};

void write_all(int fd, const std::string& bytes) {
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

std::string host_frame(const HostMessage& m) { return encode_frame(to_payload(m)); }

TEST(HostChannel, SendsWholeFramesTheHostDecodes) {
  Pair p;
  HostChannel channel(std::move(p.agent));
  GuestMessage status;
  status.kind = GuestMessage::Kind::kStatus;
  status.state = "init-data-verified";
  status.detail = "pod web";
  channel.send(status);
  GuestMessage exit;
  exit.kind = GuestMessage::Kind::kPodExit;
  exit.status = 3;
  channel.send(exit);
  FrameDecoder host;
  char buf[4096];
  ssize_t n = ::read(p.host.get(), buf, sizeof buf);
  ASSERT_GT(n, 0);
  host.feed(std::string_view(buf, static_cast<std::size_t>(n)));
  auto first = host.next();
  ASSERT_TRUE(first.ok() && first->has_value());
  auto m = parse_guest_message(**first);
  ASSERT_TRUE(m.ok()) << m.error().describe();
  EXPECT_EQ(m->state, "init-data-verified");
  auto second = host.next();
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ(parse_guest_message(**second)->status, 3);
}

TEST(HostChannel, AGoneHostBreaksSendingWithoutSigpipe) {
  Pair p;
  HostChannel channel(std::move(p.agent));
  p.host.reset();
  GuestMessage m;
  m.kind = GuestMessage::Kind::kStatus;
  m.state = "x";
  channel.send(m);  // SIGPIPE would end this test process
  EXPECT_TRUE(channel.broken());
}

TEST(HostChannel, APipeWorksAsAChannelToo) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]);
  HostChannel channel{UniqueFd(fds[1])};
  GuestMessage m;
  m.kind = GuestMessage::Kind::kStatus;
  m.state = "hello";
  channel.send(m);
  EXPECT_FALSE(channel.broken());
  char buf[256];
  EXPECT_GT(::read(read_end.get(), buf, sizeof buf), 4);
}

TEST(HostChannel, ReadsFramesSplitAnywhere) {
  Pair p;
  HostChannel channel(std::move(p.agent));
  HostMessage m;
  m.kind = HostMessage::Kind::kInitData;
  m.init_data = "version = \"0.1.0\"\n";
  std::string frame = host_frame(m);
  write_all(p.host.get(), frame.substr(0, 3));
  ASSERT_TRUE(channel.read());
  auto none = channel.next();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  write_all(p.host.get(), frame.substr(3));
  ASSERT_TRUE(channel.read());
  auto got = channel.next();
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(parse_host_message(**got)->init_data, m.init_data);
}

TEST(HostChannel, AnOversizeFrameFailsTheStreamUntilARestart) {
  Pair p;
  HostChannel channel(std::move(p.agent));
  // A length far past the limit, then a valid frame that must not be taken as one.
  const std::uint32_t huge = 0x7fffffff;
  std::string header = {static_cast<char>(huge >> 24), static_cast<char>(huge >> 16),
                        static_cast<char>(huge >> 8), static_cast<char>(huge)};
  HostMessage shutdown;
  shutdown.kind = HostMessage::Kind::kShutdown;
  write_all(p.host.get(), header + "junk" + host_frame(shutdown));
  ASSERT_TRUE(channel.read());
  auto bad = channel.next();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "guest.frame.too_large");
  EXPECT_TRUE(channel.failed());
  auto after = channel.next();
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->has_value()) << "nothing after a bad length is trusted as a frame";
  // The host reconnects: a fresh stream decodes again.
  channel.restart();
  write_all(p.host.get(), host_frame(shutdown));
  ASSERT_TRUE(channel.read());
  auto fresh = channel.next();
  ASSERT_TRUE(fresh.ok() && fresh->has_value());
  EXPECT_EQ(parse_host_message(**fresh)->kind, HostMessage::Kind::kShutdown);
}

TEST(HostChannel, EndOfFileInsideAFrameIsNamed) {
  Pair p;
  HostChannel channel(std::move(p.agent));
  HostMessage shutdown;
  shutdown.kind = HostMessage::Kind::kShutdown;
  write_all(p.host.get(), host_frame(shutdown).substr(0, 6));
  p.host.reset();
  ASSERT_TRUE(channel.read());
  EXPECT_FALSE(channel.read());
  auto s = channel.finish();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "guest.frame.truncated");
}

// --- listening (the vsock channel; a unix socket stands in for vsock here) ---

UniqueFd host_connects(const std::string& path) {
  auto fd = connect_unix(path);
  EXPECT_TRUE(fd.ok()) << fd.error().describe();
  return fd.ok() ? std::move(*fd) : UniqueFd();
}

bool readable(int fd, int timeout_ms = 2000) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

// Every frame the host can read within a short while.
std::vector<GuestMessage> host_reads(int fd) {
  FrameDecoder decoder;
  std::vector<GuestMessage> got;
  char buf[4096];
  while (readable(fd, 200)) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    decoder.feed(std::string_view(buf, static_cast<std::size_t>(n)));
  }
  for (;;) {
    auto next = decoder.next();
    if (!next.ok() || !next->has_value()) break;
    auto m = parse_guest_message(**next);
    if (m.ok()) got.push_back(*m);
  }
  return got;
}

GuestMessage greeting() {
  GuestMessage hello;
  hello.kind = GuestMessage::Kind::kHello;
  hello.agent = "test agent";
  hello.version = kProtocolVersion;
  return hello;
}

TEST(HostChannelListening, GreetsEachHostAndStartsAFreshStreamForIt) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/agent.sock";
  auto listener = listen_unix(path);
  ASSERT_TRUE(listener.ok()) << listener.error().describe();
  const int listener_fd = listener->get();
  HostChannel channel = HostChannel::listening(std::move(*listener), greeting());
  EXPECT_FALSE(channel.connected());
  EXPECT_EQ(channel.fd(), listener_fd) << "no host yet: poll the listener";

  UniqueFd first = host_connects(path);
  ASSERT_TRUE(readable(channel.fd()));
  ASSERT_TRUE(channel.read()) << "a waiting host is accepted";
  ASSERT_TRUE(channel.connected());
  EXPECT_NE(channel.fd(), listener_fd);
  auto greeted = host_reads(first.get());
  ASSERT_EQ(greeted.size(), 1u);
  EXPECT_EQ(greeted[0].kind, GuestMessage::Kind::kHello);
  EXPECT_EQ(greeted[0].agent, "test agent");

  // Half a frame, then the host goes away (confpodd restarting).
  HostMessage shutdown;
  shutdown.kind = HostMessage::Kind::kShutdown;
  write_all(first.get(), host_frame(shutdown).substr(0, 5));
  first.reset();
  ASSERT_TRUE(channel.read());
  EXPECT_FALSE(channel.read()) << "the end of the connection is the host going away";
  EXPECT_FALSE(channel.connected());
  EXPECT_EQ(channel.fd(), listener_fd) << "listening again";

  UniqueFd second = host_connects(path);
  ASSERT_TRUE(readable(channel.fd()));
  ASSERT_TRUE(channel.read());
  ASSERT_EQ(host_reads(second.get()).size(), 1u) << "the next host is greeted too";
  write_all(second.get(), host_frame(shutdown));
  ASSERT_TRUE(readable(channel.fd()));
  ASSERT_TRUE(channel.read());
  auto got = channel.next();
  ASSERT_TRUE(got.ok()) << got.error().describe() << ": the first host's half frame was kept";
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(parse_host_message(**got)->kind, HostMessage::Kind::kShutdown);
}

// confpodd restarting: what the agent says meanwhile waits for the next host, in order, after
// its greeting — exits always, output up to the bound (the oldest dropped past it, and the host
// told how much) — and sending never blocks while nobody is connected.
TEST(HostChannelListening, FramesWithoutAHostWaitForTheNextHostBounded) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/agent.sock";
  auto listener = listen_unix(path);
  ASSERT_TRUE(listener.ok()) << listener.error().describe();
  HostChannel channel = HostChannel::listening(std::move(*listener), greeting());
  channel.send(greeting());  // each host gets its own greeting: this one is not kept
  GuestMessage exit;
  exit.kind = GuestMessage::Kind::kExit;
  exit.container = "app";
  exit.status = 3;
  channel.send(exit);
  GuestMessage output;
  output.kind = GuestMessage::Kind::kOutput;
  output.container = "app";
  output.stream = "stdout";
  const std::size_t chunks = 200;  // 200 x 32 KiB = 6.25 MiB, past the 4 MiB bound
  for (std::size_t i = 0; i < chunks; ++i) {
    output.data = std::string(kMaxOutputChunk, static_cast<char>('a' + i % 26));
    channel.send(output);
  }
  GuestMessage pod_exit;
  pod_exit.kind = GuestMessage::Kind::kPodExit;
  pod_exit.status = 3;
  channel.send(pod_exit);
  EXPECT_FALSE(channel.broken());

  UniqueFd host = host_connects(path);
  // The host reads while the agent hands it the backlog (more than a socket buffer holds).
  std::vector<GuestMessage> got;
  std::thread reader([&] {
    FrameDecoder decoder;
    char buf[64 << 10];
    while (readable(host.get(), 5000)) {
      ssize_t n = ::read(host.get(), buf, sizeof buf);
      if (n <= 0) break;
      decoder.feed(std::string_view(buf, static_cast<std::size_t>(n)));
      bool done = false;
      for (;;) {
        auto next = decoder.next();
        if (!next.ok() || !next->has_value()) break;
        auto m = parse_guest_message(**next);
        if (!m.ok()) continue;
        got.push_back(*m);
        done = done || m->kind == GuestMessage::Kind::kPodExit;
      }
      if (done) break;
    }
  });
  ASSERT_TRUE(readable(channel.fd()));
  ASSERT_TRUE(channel.read());
  reader.join();
  ASSERT_GE(got.size(), 4u);
  EXPECT_EQ(got[0].kind, GuestMessage::Kind::kHello);
  EXPECT_EQ(got[1].kind, GuestMessage::Kind::kStatus);
  EXPECT_EQ(got[1].state, "output-dropped");
  EXPECT_EQ(got[2].kind, GuestMessage::Kind::kExit) << "an exit is never dropped";
  EXPECT_EQ(got[2].status, 3);
  EXPECT_EQ(got.back().kind, GuestMessage::Kind::kPodExit);
  std::size_t outputs = 0, output_bytes = 0;
  for (const auto& m : got)
    if (m.kind == GuestMessage::Kind::kOutput) ++outputs, output_bytes += m.data.size();
  EXPECT_EQ(outputs + 4, got.size()) << "no other frame, no second hello";
  EXPECT_LE(output_bytes, HostChannel::kMaxBacklogBytes);
  // The bound is on frames, which carry output base64-encoded: ~3/4 of it is data.
  EXPECT_GT(output_bytes, HostChannel::kMaxBacklogBytes / 2);
  const std::size_t dropped = (chunks - outputs) * kMaxOutputChunk;
  EXPECT_EQ(got[1].detail,
            std::to_string(dropped) + " bytes of output were dropped while no host was connected");
  // The newest output was kept: the last chunk sent is the last one received.
  EXPECT_EQ(got[got.size() - 2].data[0], static_cast<char>('a' + (chunks - 1) % 26));
  EXPECT_FALSE(channel.broken());
}

// Binding only (no traffic): a port the kernel picks, so that nothing else on the machine
// holding one port can make this fail.
TEST(HostChannelListening, AVsockListenerListensOnItsPort) {
  auto listener = listen_vsock(VMADDR_PORT_ANY);
  if (!listener.ok()) {
    UniqueFd probe(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe) GTEST_SKIP() << "this kernel has no AF_VSOCK: " << listener.error().describe();
    FAIL() << listener.error().describe();
  }
  sockaddr_vm addr{};
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener->get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  EXPECT_EQ(addr.svm_family, AF_VSOCK);
  EXPECT_EQ(addr.svm_cid, VMADDR_CID_ANY);
  ASSERT_NE(addr.svm_port, VMADDR_PORT_ANY);
  int accepting = 0;
  len = sizeof accepting;
  ASSERT_EQ(::getsockopt(listener->get(), SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len), 0);
  EXPECT_EQ(accepting, 1);
  auto again = listen_vsock(addr.svm_port);
  ASSERT_FALSE(again.ok()) << "the port is taken";
  EXPECT_NE(again.error().message.find("vsock port " + std::to_string(addr.svm_port)),
            std::string::npos)
      << again.error().message;
}

TEST(HostChannelListening, ListeningOnAnUnusablePathIsNamed) {
  auto listener = listen_unix("/nonexistent-dir/agent.sock");
  ASSERT_FALSE(listener.ok());
  EXPECT_EQ(listener.error().code, "agent.channel");
  EXPECT_NE(listener.error().message.find("/nonexistent-dir/agent.sock"), std::string::npos);
}

TEST(HostChannelListening, TheChannelIsVsockWhenTheVmHasAVirtioVsockDevice) {
  testing::TempDir root;
  const auto devices = std::filesystem::path(root.path()) / "sys/bus/virtio/devices";
  EXPECT_FALSE(has_virtio_vsock(root.path())) << "no virtio bus at all";
  auto add_device = [&](const std::string& name, const std::string& id) {
    std::filesystem::create_directories(devices / name);
    std::ofstream(devices / name / "device") << id << "\n";
  };
  add_device("virtio0", "0x0003");  // console (virtio-serial)
  add_device("virtio1", "0x0002");  // block
  EXPECT_FALSE(has_virtio_vsock(root.path()));
  add_device("virtio2", "0x0013");  // vsock
  EXPECT_TRUE(has_virtio_vsock(root.path()));
}

}  // namespace
}  // namespace confpod::guest::agent
