// The agent tests' fixture (agent_test.cc, agent_exec_test.cc): the test is the host, on one
// end of a socketpair, and the agent runs in a forked child (as in the VM: one single-threaded
// process that reaps every child). Sample evidence from a fake root whose /proc/cmdline carries
// the init-data digest. Needs root (containers); the image tests need
// examples/hello/build-image.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/input.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "attest/base/bytes.h"
#include "attest/crypto/crypto.h"
#include "guest/agent/agent.h"
#include "guest/agent/test_rootfs.h"
#include "guest/protocol/init_data.h"
#include "guest/protocol/messages.h"
#include "tests/support/process.h"

namespace confpod::guest::agent::testing_support {

namespace fs = std::filesystem;

struct HelloImage {
  std::string archive;
  std::string digest;
  std::string skip_reason;
};

// examples/hello/build-image, once per test process; CONFPOD_AGENT_TEST_IMAGE=ARCHIVE@DIGEST
// runs the tests against another archive instead.
inline const HelloImage& hello_image() {
  static agent::testing::TempDir dir;
  static const HelloImage image = [] {
    HelloImage h;
    if (const char* given = std::getenv("CONFPOD_AGENT_TEST_IMAGE"); given != nullptr) {
      std::string text = given;
      auto at = text.rfind('@');
      if (at == std::string::npos) {
        h.skip_reason = "CONFPOD_AGENT_TEST_IMAGE wants ARCHIVE@DIGEST";
      } else {
        h.archive = text.substr(0, at);
        h.digest = text.substr(at + 1);
      }
      return h;
    }
    if (!fs::exists(CONFPOD_HELLO_BUILD_IMAGE)) {
      h.skip_reason = std::string(CONFPOD_HELLO_BUILD_IMAGE) + " does not exist yet";
      return h;
    }
    auto result = confpod::testing::run_process(
        {CONFPOD_HELLO_BUILD_IMAGE, "--out", dir.path() + "/hello.tar"});
    if (result.exit_code != 0) {
      h.skip_reason = "build-image failed: " + result.err;
      return h;
    }
    std::istringstream lines(result.out);
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("archive=")) h.archive = line.substr(8);
      if (line.starts_with("digest=")) h.digest = line.substr(7);
    }
    if (h.archive.empty() || !h.digest.starts_with("sha256:"))
      h.skip_reason = "build-image printed no archive/digest: " + result.out;
    return h;
  }();
  return image;
}

// The agent in a child process; the test holds the host end.
class AgentProcess {
 public:
  AgentProcess(AgentOptions options) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      throw std::runtime_error("socketpair");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(sv[0]);
      int status = 1;
      {
        Agent agent(UniqueFd(sv[1]), std::move(options));
        status = agent.run();
      }
      ::_exit(status);
    }
    ::close(sv[1]);
    host_ = UniqueFd(sv[0]);
  }
  // The agent listens on a unix socket at `listen_path`, as it listens on vsock in a VM, and
  // the host connects to it; reconnect() is confpodd restarting.
  AgentProcess(AgentOptions options, const std::string& listen_path) : listen_path_(listen_path) {
    auto listener = listen_unix(listen_path);
    if (!listener.ok()) throw std::runtime_error(listener.error().describe());
    options.channel_reconnects = true;
    options.channel_retry = std::chrono::milliseconds(50);
    pid_ = ::fork();
    if (pid_ == 0) {
      int status = 1;
      {
        Agent agent(HostChannel::listening(std::move(*listener), agent_hello()),
                    std::move(options));
        status = agent.run();
      }
      ::_exit(status);
    }
    listener->reset();
    reconnect();
  }
  // A new connection to the listening agent (the old one, if any, is closed first).
  void reconnect() {
    host_.reset();
    decoder_ = FrameDecoder();
    auto connected = connect_unix(listen_path_);
    if (!connected.ok()) throw std::runtime_error(connected.error().describe());
    host_ = std::move(*connected);
  }

  ~AgentProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  void send_payload(std::string_view payload) { send_raw(encode_frame(payload)); }
  void send(const HostMessage& m) { send_payload(to_payload(m)); }
  void send_raw(const std::string& bytes) {
    ASSERT_EQ(::write(host_.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void send_init_data(const std::string& raw) {
    HostMessage m;
    m.kind = HostMessage::Kind::kInitData;
    m.init_data = raw;
    send(m);
  }

  // Reads frames until `stop` matches one (returned with all before it) or EOF / timeout.
  std::vector<GuestMessage> read_until(const std::function<bool(const GuestMessage&)>& stop,
                                       std::chrono::seconds timeout = std::chrono::seconds(60)) {
    std::vector<GuestMessage> got;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (;;) {
        auto next = decoder_.next();
        if (!next.ok()) {
          ADD_FAILURE() << next.error().describe();
          return got;
        }
        if (!next->has_value()) break;
        auto m = parse_guest_message(**next);
        if (!m.ok()) {
          ADD_FAILURE() << "agent sent a bad frame: " << m.error().describe();
          continue;
        }
        got.push_back(*m);
        if (stop(got.back())) return got;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ADD_FAILURE() << "timed out waiting for the agent";
        return got;
      }
      pollfd p{host_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[65536];
      ssize_t n = ::read(host_.get(), buf, sizeof buf);
      if (n <= 0) return got;
      decoder_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
  }
  std::vector<GuestMessage> read_to_end() {
    return read_until([](const GuestMessage&) { return false; });
  }

  // The host stops sending (the agent reads EOF) but still reads.
  void close_write() { ::shutdown(host_.get(), SHUT_WR); }

  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  std::string listen_path_;
  UniqueFd host_;
  FrameDecoder decoder_;
};

// GTEST_SKIP only returns from the function it is in: a macro, so it ends the test.
#define NEED_HELLO_IMAGE() \
  if (!hello_image().skip_reason.empty()) GTEST_SKIP() << hello_image().skip_reason

inline bool is_kind(const GuestMessage& m, GuestMessage::Kind kind) { return m.kind == kind; }

inline const GuestMessage* find_error(const std::vector<GuestMessage>& frames) {
  for (const auto& f : frames)
    if (f.kind == GuestMessage::Kind::kError) return &f;
  return nullptr;
}

inline bool has_status(const std::vector<GuestMessage>& frames, const std::string& state) {
  for (const auto& f : frames)
    if (f.kind == GuestMessage::Kind::kStatus && f.state == state) return true;
  return false;
}

inline std::string stdout_of(const std::vector<GuestMessage>& frames,
                             const std::string& container) {
  std::string out;
  for (const auto& f : frames)
    if (f.kind == GuestMessage::Kind::kOutput && f.container == container && f.stream == "stdout")
      out += f.data;
  return out;
}

class GuestAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (namespaces and mounts)";
    root_ = tmp_.path() + "/root";
    state_ = tmp_.path() + "/state";
    fs::create_directories(root_ + "/proc");
    fs::create_directories(state_);
  }

  // A valid init-data with one container; the image digest is the hello image's when built.
  InitData init_data(std::vector<std::string> command) {
    InitData d;
    d.pod = "hello-pod";
    d.tee = "none";
    InitContainer c;
    c.name = "app";
    c.image.digest =
        hello_image().digest.empty() ? "sha256:" + std::string(64, 'a') : hello_image().digest;
    c.image.disk = "img0";
    c.command = std::move(command);
    d.containers.push_back(c);
    return d;
  }

  // What the launch bound: the sample evidence's kernel command line parameter.
  void bind_digest(const std::string& raw) {
    std::ofstream(root_ + "/proc/cmdline")
        << "console=ttyS0 confpod.init_data_digest=" << to_hex(crypto::sha256(as_bytes(raw)))
        << "\n";
  }

  AgentOptions options() {
    AgentOptions o;
    o.root = root_;
    o.state_dir = state_;
    o.configure_network = false;
    o.allow_poweroff = false;
    o.stop_grace = std::chrono::milliseconds(2000);
    if (!hello_image().archive.empty()) o.disks["img0"] = hello_image().archive;
    return o;
  }

  agent::testing::TempDir tmp_;
  std::string root_;
  std::string state_;
};

inline const char* kServing = "trap 'exit 0' TERM; echo ready; while :; do sleep 0.2; done";

}  // namespace confpod::guest::agent::testing_support
