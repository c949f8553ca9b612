// ExecRelay between a real SOCK_SEQPACKET pair (the client's end held by the test) and a
// recording stand-in for the agent channel.
#include "daemon/pods/exec_relay.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace confpod::pods {
namespace {

using namespace std::chrono_literals;
using guest::HostMessage;

struct Recorder {
  std::mutex mu;
  std::vector<HostMessage> sent;
  ExecRelay::SendToGuest sender() {
    return [this](const HostMessage& m) {
      std::lock_guard lock(mu);
      sent.push_back(m);
      return ok_status();
    };
  }
  // Waits until `count` frames were sent; returns a copy.
  std::vector<HostMessage> wait(std::size_t count) {
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard lock(mu);
        if (sent.size() >= count) return sent;
      }
      std::this_thread::sleep_for(10ms);
    }
    std::lock_guard lock(mu);
    return sent;
  }
};

void send_packet(int fd, const std::string& packet) {
  ASSERT_EQ(::send(fd, packet.data(), packet.size(), 0), static_cast<ssize_t>(packet.size()));
}

// The next packet the client gets ("" at the end of the session).
std::string next_packet(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 5000) <= 0) return "<timeout>";
  std::string buf(kMaxExecPacket + 1, '\0');
  ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
  return n <= 0 ? "" : buf.substr(0, static_cast<std::size_t>(n));
}

TEST(ExecRelay, ClientPacketsBecomeAgentFramesAndGarbageIsDropped) {
  auto pair = make_exec_socket_pair();
  ASSERT_TRUE(pair.ok());
  Recorder agent;
  ExecRelay relay(5, std::move(pair->second), agent.sender());
  const int client = pair->first.get();
  send_packet(client, "ihello");
  send_packet(client, "?junk");                              // unknown type
  send_packet(client, std::string("w\x00\x18\x00\x50", 5));  // 24 x 80
  send_packet(client, "wxx");                                // a window packet of the wrong size
  send_packet(client, "e");
  auto sent = agent.wait(3);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].kind, HostMessage::Kind::kExecInput);
  EXPECT_EQ(sent[0].id, 5u);
  EXPECT_EQ(sent[0].data, "hello");
  EXPECT_FALSE(sent[0].eof);
  EXPECT_EQ(sent[1].kind, HostMessage::Kind::kExecResize);
  EXPECT_EQ(sent[1].rows, 24u);
  EXPECT_EQ(sent[1].cols, 80u);
  EXPECT_EQ(sent[2].kind, HostMessage::Kind::kExecInput);
  EXPECT_TRUE(sent[2].eof);

  // A client that goes away ends the command.
  pair->first.reset();
  sent = agent.wait(4);
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[3].kind, HostMessage::Kind::kExecClose);
  EXPECT_EQ(sent[3].id, 5u);
}

TEST(ExecRelay, OutputAndExitReachTheClientThenTheSessionEnds) {
  auto pair = make_exec_socket_pair();
  ASSERT_TRUE(pair.ok());
  Recorder agent;
  ExecRelay relay(6, std::move(pair->second), agent.sender());
  relay.output(false, "out");
  relay.output(true, "err");
  relay.exited(130);
  EXPECT_TRUE(relay.finished());
  relay.output(false, "late");  // after the exit: nothing more
  const int client = pair->first.get();
  EXPECT_EQ(next_packet(client), "oout");
  EXPECT_EQ(next_packet(client), "Eerr");
  EXPECT_EQ(next_packet(client), std::string("x\x00\x00\x00\x82", 5));
  EXPECT_EQ(next_packet(client), "");
  EXPECT_TRUE(agent.wait(0).empty());
}

// A client slower than the command gets everything: what its socket cannot take waits in
// confpodd (up to kMaxQueuedOutput), and the exit status comes after the last byte.
TEST(ExecRelay, ASlowClientGetsAllOutputThenTheStatus) {
  auto pair = make_exec_socket_pair();
  ASSERT_TRUE(pair.ok());
  Recorder agent;
  ExecRelay relay(8, std::move(pair->second), agent.sender());
  const std::size_t total = ExecRelay::kMaxQueuedOutput / 2 + 100000;  // more than a socket holds
  std::size_t given = 0;
  for (char c = 'a'; given < total; c = c == 'z' ? 'a' : static_cast<char>(c + 1)) {
    std::size_t n = std::min(kMaxExecPacket, total - given);
    relay.output(false, std::string(n, c));
    given += n;
  }
  relay.exited(3);
  EXPECT_TRUE(relay.finished());
  std::this_thread::sleep_for(100ms);  // the client is busy
  const int client = pair->first.get();
  std::size_t got = 0;
  std::string packet;
  char expect = 'a';
  while ((packet = next_packet(client)).size() > 0 && packet[0] == 'o') {
    EXPECT_EQ(packet[1], expect) << "at byte " << got;
    expect = expect == 'z' ? 'a' : static_cast<char>(expect + 1);
    got += packet.size() - 1;
  }
  EXPECT_EQ(got, total);
  EXPECT_EQ(packet, std::string("x\x00\x00\x00\x03", 5));
  EXPECT_EQ(next_packet(client), "");
  EXPECT_TRUE(agent.wait(0).empty()) << "the exec was closed although the client read";
  for (int i = 0; i < 100 && !relay.drained(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(relay.drained());
}

// A packet larger than any the protocol has is not cut to size and passed on: it ends the
// session.
TEST(ExecRelay, AnOversizePacketEndsTheExec) {
  auto pair = make_exec_socket_pair();
  ASSERT_TRUE(pair.ok());
  Recorder agent;
  ExecRelay relay(9, std::move(pair->second), agent.sender());
  const int client = pair->first.get();
  int size = 1 << 20;
  ASSERT_EQ(::setsockopt(client, SOL_SOCKET, SO_SNDBUF, &size, sizeof size), 0);
  send_packet(client, "i" + std::string(kMaxExecPacket + 10, 'x'));
  std::string packet = next_packet(client);
  EXPECT_EQ(packet.rfind("fa packet of", 0), 0u) << packet;
  auto sent = agent.wait(1);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].kind, HostMessage::Kind::kExecClose);
}

// A client that falls more than kMaxQueuedOutput behind ends its exec.
TEST(ExecRelay, AClientThatDoesNotReadEndsItsExec) {
  auto pair = make_exec_socket_pair();
  ASSERT_TRUE(pair.ok());
  Recorder agent;
  ExecRelay relay(7, std::move(pair->second), agent.sender());
  const std::string chunk(kMaxExecPacket, 'x');
  int sent_chunks = 0;
  while (!relay.finished() && sent_chunks < 100000) {
    relay.output(false, chunk);
    ++sent_chunks;
  }
  ASSERT_TRUE(relay.finished()) << "the socket never filled";
  auto sent = agent.wait(1);
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent[0].kind, HostMessage::Kind::kExecClose);
  EXPECT_EQ(sent[0].id, 7u);
}

TEST(ExecRelay, AnAttachSendsTheAgentNothing) {
  auto pair = make_exec_socket_pair();
  ASSERT_TRUE(pair.ok());
  ExecRelay relay(0, std::move(pair->second), ExecRelay::SendToGuest());
  send_packet(pair->first.get(), "ityped");
  relay.output(false, "line\n");
  EXPECT_EQ(next_packet(pair->first.get()), "oline\n");
  relay.failed("the pod stopped");
  EXPECT_EQ(next_packet(pair->first.get()), "fthe pod stopped");
  pair->first.reset();  // the client leaves: no exec-close to send, and nothing breaks
}

}  // namespace
}  // namespace confpod::pods
