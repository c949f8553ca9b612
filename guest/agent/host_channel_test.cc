#include "guest/agent/host_channel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

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

}  // namespace
}  // namespace confpod::guest::agent
