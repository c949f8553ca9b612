// The host end of the guest channel: reaching it at a unix socket or a vsock address, with
// the retries a booting guest needs, and the errors when nothing is there.
#include "vmm/channel.h"

#include <gtest/gtest.h>
#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "attest/base/unique_fd.h"
#include "tests/support/process.h"

namespace confpod::vmm {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

UniqueFd listen_unix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  EXPECT_EQ(::listen(fd.get(), 1), 0);
  return fd;
}

// Accepts the connection on `listener` and checks that a frame gets across each way.
void expect_frames_cross(int listener, GuestChannel& connected) {
  UniqueFd peer(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(peer);
  auto accepted = GuestChannel::from_fd(std::move(peer));
  ASSERT_TRUE(accepted.ok());
  ASSERT_TRUE(connected.write_frame("to the guest", 1s).ok());
  ASSERT_TRUE(accepted->write_frame("to the host", 1s).ok());
  auto there = accepted->read_frame(1s);
  auto back = connected.read_frame(1s);
  ASSERT_TRUE(there.ok() && back.ok());
  EXPECT_EQ(*there, "to the guest");
  EXPECT_EQ(*back, "to the host");
}

TEST(ChannelAddress, DescribesWhereItConnects) {
  EXPECT_EQ(ChannelAddress::unix_socket("/run/confpod/pods/web/vm/agent.sock").describe(),
            "/run/confpod/pods/web/vm/agent.sock");
  EXPECT_EQ(ChannelAddress::vsock(10003, 1024).describe(), "vsock 10003:1024");
  EXPECT_NE(ChannelAddress::vsock(10003, 1024), ChannelAddress::vsock(10004, 1024));
}

// The listener appears only after the first attempts (QEMU, or a listening agent, not there
// yet): connect keeps trying until it is, and the stream works both ways.
TEST(GuestChannelConnect, UnixAddressRetriesUntilTheListenerExists) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/agent.sock";
  UniqueFd listener;
  std::thread late([&] {
    std::this_thread::sleep_for(300ms);
    listener = listen_unix(path);
  });
  auto channel = GuestChannel::connect(ChannelAddress::unix_socket(path), 5s);
  late.join();
  ASSERT_TRUE(channel.ok()) << channel.error().describe();
  expect_frames_cross(listener.get(), *channel);
}

TEST(GuestChannelConnect, UnixAddressWithNothingThereFailsAtTheDeadlineNamingThePath) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/missing.sock";
  auto started = Clock::now();
  auto channel = GuestChannel::connect(ChannelAddress::unix_socket(path), 300ms);
  ASSERT_FALSE(channel.ok());
  EXPECT_GE(Clock::now() - started, 300ms);
  EXPECT_EQ(channel.error().code, "vmm.channel.connect");
  EXPECT_NE(channel.error().message.find(path), std::string::npos) << channel.error().message;
}

// CID 1 is this machine's own loopback: nothing leaves it. Nothing listens on the port (or
// the machine has no loopback transport, or no vsock at all): an error naming the address,
// after retrying until the deadline where retrying can help.
TEST(GuestChannelConnect, VsockWithNobodyListeningFailsNamingTheAddress) {
  auto started = Clock::now();
  auto channel =
      GuestChannel::connect(ChannelAddress::vsock(VMADDR_CID_LOCAL, 4'000'000'001u), 400ms);
  ASSERT_FALSE(channel.ok());
  EXPECT_LT(Clock::now() - started, 5s);
  EXPECT_EQ(channel.error().code, "vmm.channel.connect");
  EXPECT_NE(channel.error().message.find("vsock 1:4000000001"), std::string::npos)
      << channel.error().message;
}

// Where this machine has vsock's loopback transport (vsock_loopback), a real AF_VSOCK
// round trip through connect(); elsewhere there is no vsock peer a test may reach.
TEST(GuestChannelConnect, VsockLoopbackRoundTripWhereTheTransportExists) {
  UniqueFd listener(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener) GTEST_SKIP() << "no AF_VSOCK here: " << std::strerror(errno);
  sockaddr_vm address{};
  address.svm_family = AF_VSOCK;
  address.svm_cid = VMADDR_CID_LOCAL;
  address.svm_port = VMADDR_PORT_ANY;
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    GTEST_SKIP() << "no vsock loopback transport here: " << std::strerror(errno);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length), 0);
  auto channel =
      GuestChannel::connect(ChannelAddress::vsock(VMADDR_CID_LOCAL, address.svm_port), 5s);
  ASSERT_TRUE(channel.ok()) << channel.error().describe();
  expect_frames_cross(listener.get(), *channel);
}

}  // namespace
}  // namespace confpod::vmm
