// The agent against a hostile host: the test is the host, on one end of a socketpair, and the
// agent runs in a forked child (as in the VM: one single-threaded process that reaps every
// child). Sample evidence from a fake root whose /proc/cmdline carries the init-data digest.
// Needs root (containers); the image tests need examples/hello/build-image.
#include "guest/agent/agent.h"

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
#include "guest/agent/test_rootfs.h"
#include "guest/protocol/init_data.h"
#include "guest/protocol/messages.h"
#include "tests/support/process.h"

namespace confpod::guest::agent {
namespace {

namespace fs = std::filesystem;

struct HelloImage {
  std::string archive;
  std::string digest;
  std::string skip_reason;
};

// examples/hello/build-image, once per test process; CONFPOD_AGENT_TEST_IMAGE=ARCHIVE@DIGEST
// runs the tests against another archive instead.
const HelloImage& hello_image() {
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
  UniqueFd host_;
  FrameDecoder decoder_;
};

// GTEST_SKIP only returns from the function it is in: a macro, so it ends the test.
#define NEED_HELLO_IMAGE() \
  if (!hello_image().skip_reason.empty()) GTEST_SKIP() << hello_image().skip_reason

bool is_kind(const GuestMessage& m, GuestMessage::Kind kind) { return m.kind == kind; }

const GuestMessage* find_error(const std::vector<GuestMessage>& frames) {
  for (const auto& f : frames)
    if (f.kind == GuestMessage::Kind::kError) return &f;
  return nullptr;
}

bool has_status(const std::vector<GuestMessage>& frames, const std::string& state) {
  for (const auto& f : frames)
    if (f.kind == GuestMessage::Kind::kStatus && f.state == state) return true;
  return false;
}

std::string stdout_of(const std::vector<GuestMessage>& frames, const std::string& container) {
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

TEST_F(GuestAgent, RunsThePodAndReportsEverything) {
  NEED_HELLO_IMAGE();
  std::string raw = to_json(init_data({"/bin/sh", "-c", "echo hi; exit 7"}));
  bind_digest(raw);
  AgentProcess agent(options());
  agent.send_init_data(raw);
  auto frames = agent.read_to_end();
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames[0].kind, GuestMessage::Kind::kHello);
  EXPECT_EQ(frames[0].version, kProtocolVersion);
  EXPECT_EQ(frames[0].agent, "confpod-agent 0.1");
  EXPECT_EQ(find_error(frames), nullptr)
      << find_error(frames)->code << ": " << find_error(frames)->detail;
  EXPECT_TRUE(has_status(frames, "init-data-verified"));
  EXPECT_TRUE(has_status(frames, "image-verified"));
  EXPECT_TRUE(has_status(frames, "container-started"));
  EXPECT_EQ(stdout_of(frames, "app"), "hi\n");
  ASSERT_GE(frames.size(), 2u);
  const auto& exit = frames[frames.size() - 2];
  EXPECT_EQ(exit.kind, GuestMessage::Kind::kExit);
  EXPECT_EQ(exit.container, "app");
  EXPECT_EQ(exit.status, 7);
  EXPECT_EQ(frames.back().kind, GuestMessage::Kind::kPodExit);
  EXPECT_EQ(frames.back().status, 7);
  EXPECT_EQ(agent.wait(), 7);
}

// No command in init-data: the image's Entrypoint (/bin/hello) runs with the image's Env plus
// init-data's; without its secret it exits 3 (the hello image's rule).
TEST_F(GuestAgent, ImageEntrypointRunsWhenInitDataHasNoCommand) {
  NEED_HELLO_IMAGE();
  InitData d = init_data({});
  d.containers[0].env["SECRET_FILE"] = "/run/secrets/none";
  std::string raw = to_json(d);
  bind_digest(raw);
  AgentProcess agent(options());
  agent.send_init_data(raw);
  auto frames = agent.read_to_end();
  EXPECT_EQ(find_error(frames), nullptr);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().kind, GuestMessage::Kind::kPodExit);
  EXPECT_EQ(frames.back().status, 3);
  EXPECT_EQ(agent.wait(), 3);
}

// Secrets reach the container on its own tmpfs (the hello entrypoint prints the SHA-256 of
// /run/secrets/greeting and exits 0), never the rootfs on the agent's side, and their value
// never goes over the channel.
TEST_F(GuestAgent, SecretsReachTheContainerOnly) {
  NEED_HELLO_IMAGE();
  const std::string secret = "the tenant's greeting secret";
  InitData d =
      init_data({"/bin/sh", "-c", "/bin/hello; test -e /run/secrets/greeting && echo present"});
  d.kbs_url = "http://127.0.0.1:9";
  d.secrets.push_back({"default/greeting/hello", "/run/secrets/greeting", ""});
  std::string raw = to_json(d);
  bind_digest(raw);
  auto o = options();
  o.secret_source = [secret](const std::string& resource) -> Result<Bytes> {
    if (resource != "default/greeting/hello") return make_error("test", "unexpected " + resource);
    return Bytes(secret.begin(), secret.end());
  };
  AgentProcess agent(std::move(o));
  agent.send_init_data(raw);
  auto frames = agent.read_to_end();
  EXPECT_EQ(find_error(frames), nullptr) << find_error(frames)->detail;
  EXPECT_TRUE(has_status(frames, "secrets-ready"));
  std::string out = stdout_of(frames, "app");
  EXPECT_NE(out.find(to_hex(crypto::sha256(as_bytes(secret)))), std::string::npos) << out;
  EXPECT_NE(out.find("present"), std::string::npos) << out;
  for (const auto& f : frames) {
    EXPECT_EQ(f.data.find(secret), std::string::npos);
    EXPECT_EQ(f.detail.find(secret), std::string::npos);
  }
  EXPECT_EQ(frames.back().status, 0);
  EXPECT_EQ(agent.wait(), 0);
  EXPECT_FALSE(fs::exists(state_ + "/containers/app/rootfs/run/secrets/greeting"));
}

TEST_F(GuestAgent, AlteredInitDataIsRefusedBeforeAnythingRuns) {
  std::string bound = to_json(init_data({"/bin/sh", "-c", "echo hi"}));
  bind_digest(bound);
  InitData altered = init_data({"/bin/sh", "-c", "echo pwned"});
  std::string raw = to_json(altered);
  AgentProcess agent(options());
  agent.send_init_data(raw);
  auto frames = agent.read_to_end();
  const GuestMessage* error = find_error(frames);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->code, "agent.init_data.mismatch");
  EXPECT_NE(error->detail.find(to_hex(crypto::sha256(as_bytes(raw)))), std::string::npos)
      << error->detail;
  EXPECT_NE(error->detail.find(to_hex(crypto::sha256(as_bytes(bound)))), std::string::npos)
      << error->detail;
  EXPECT_FALSE(has_status(frames, "init-data-verified"));
  EXPECT_FALSE(has_status(frames, "container-started"));
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().kind, GuestMessage::Kind::kPodExit);
  EXPECT_EQ(frames.back().status, 125);
  EXPECT_EQ(agent.wait(), 125);
  EXPECT_FALSE(fs::exists(state_ + "/containers"));
}

TEST_F(GuestAgent, FirstFrameMustBeInitData) {
  AgentProcess agent(options());
  HostMessage shutdown;
  shutdown.kind = HostMessage::Kind::kShutdown;
  agent.send(shutdown);
  auto frames = agent.read_to_end();
  const GuestMessage* error = find_error(frames);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->code, "agent.protocol");
  EXPECT_EQ(frames.back().kind, GuestMessage::Kind::kPodExit);
  EXPECT_EQ(agent.wait(), 125);
}

TEST_F(GuestAgent, NoInitDataWithinTheTimeout) {
  auto o = options();
  o.init_data_timeout = std::chrono::milliseconds(300);
  AgentProcess agent(std::move(o));
  auto frames = agent.read_to_end();
  const GuestMessage* error = find_error(frames);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->code, "agent.init_data.timeout");
  EXPECT_EQ(agent.wait(), 125);
}

TEST_F(GuestAgent, TeeMustMatchTheEvidence) {
  InitData d = init_data({"/bin/true"});
  d.tee = "snp";
  std::string raw = to_json(d);
  bind_digest(raw);
  AgentProcess agent(options());
  agent.send_init_data(raw);
  auto frames = agent.read_to_end();
  const GuestMessage* error = find_error(frames);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->code, "agent.tee.mismatch") << error->detail;
  EXPECT_FALSE(has_status(frames, "container-started"));
  EXPECT_EQ(agent.wait(), 125);
}

TEST_F(GuestAgent, ImageDigestOtherThanPinnedIsRefused) {
  NEED_HELLO_IMAGE();
  InitData d = init_data({"/bin/sh", "-c", "echo hi"});
  // Pin another manifest digest than the archive's.
  std::string digest = hello_image().digest;
  digest.back() = digest.back() == '0' ? '1' : '0';
  d.containers[0].image.digest = digest;
  std::string raw = to_json(d);
  bind_digest(raw);
  AgentProcess agent(options());
  agent.send_init_data(raw);
  auto frames = agent.read_to_end();
  const GuestMessage* error = find_error(frames);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->code, "agent.image") << error->detail;
  EXPECT_TRUE(has_status(frames, "init-data-verified"));
  EXPECT_FALSE(has_status(frames, "container-started"));
  EXPECT_EQ(frames.back().kind, GuestMessage::Kind::kPodExit);
  EXPECT_EQ(agent.wait(), 125);
}

const char* kServing = "trap 'exit 0' TERM; echo ready; while :; do sleep 0.2; done";

TEST_F(GuestAgent, HostileFramesAreRefusedAndThePodContinues) {
  NEED_HELLO_IMAGE();
  std::string raw = to_json(init_data({"/bin/sh", "-c", kServing}));
  bind_digest(raw);
  AgentProcess agent(options());
  agent.send_init_data(raw);
  auto started = agent.read_until([](const GuestMessage& m) {
    return m.kind == GuestMessage::Kind::kOutput && m.data == "ready\n";
  });
  ASSERT_TRUE(has_status(started, "container-started"));

  HostMessage exec;
  exec.kind = HostMessage::Kind::kExec;
  exec.id = 42;
  exec.container = "app";
  exec.command = {"/bin/sh", "-c", "echo should-not-run"};
  agent.send(exec);
  auto refused = agent.read_until(
      [](const GuestMessage& m) { return is_kind(m, GuestMessage::Kind::kResponse); });
  ASSERT_FALSE(refused.empty());
  EXPECT_EQ(refused.back().id, 42u);
  EXPECT_FALSE(refused.back().ok);
  EXPECT_EQ(refused.back().detail, "exec is not allowed by init-data");

  agent.send_payload("this is not json");
  auto garbage = agent.read_until(
      [](const GuestMessage& m) { return is_kind(m, GuestMessage::Kind::kError); });
  ASSERT_FALSE(garbage.empty());
  EXPECT_EQ(garbage.back().code, "agent.protocol");

  agent.send_payload(R"({"type":"exec","id":1})");
  auto partial = agent.read_until(
      [](const GuestMessage& m) { return is_kind(m, GuestMessage::Kind::kError); });
  ASSERT_FALSE(partial.empty());
  EXPECT_EQ(partial.back().code, "agent.protocol");

  // The same init-data again (a re-attached daemon) is ignored quietly; different bytes are
  // refused: the first error frame after both is about the different one.
  agent.send_init_data(raw);
  agent.send_init_data(to_json(init_data({"/bin/sh", "-c", "echo replaced"})));
  auto second = agent.read_until(
      [](const GuestMessage& m) { return is_kind(m, GuestMessage::Kind::kError); });
  ASSERT_FALSE(second.empty());
  EXPECT_EQ(second.back().code, "agent.protocol");
  EXPECT_NE(second.back().detail.find("a different one"), std::string::npos)
      << second.back().detail;

  // Still running: a graceful shutdown ends it with the container's own status 0.
  HostMessage shutdown;
  shutdown.kind = HostMessage::Kind::kShutdown;
  agent.send(shutdown);
  auto rest = agent.read_to_end();
  EXPECT_EQ(stdout_of(rest, "app").find("replaced"), std::string::npos);
  ASSERT_GE(rest.size(), 2u);
  EXPECT_EQ(rest[rest.size() - 2].kind, GuestMessage::Kind::kExit);
  EXPECT_EQ(rest[rest.size() - 2].status, 0);
  EXPECT_EQ(rest.back().kind, GuestMessage::Kind::kPodExit);
  EXPECT_EQ(rest.back().status, 0);
  EXPECT_EQ(agent.wait(), 0);
}

TEST_F(GuestAgent, OversizedFrameStopsReadingButNotThePod) {
  NEED_HELLO_IMAGE();
  std::string raw = to_json(init_data({"/bin/sh", "-c", "sleep 1; echo finished"}));
  bind_digest(raw);
  AgentProcess agent(options());
  agent.send_init_data(raw);
  agent.read_until([](const GuestMessage& m) {
    return m.kind == GuestMessage::Kind::kStatus && m.state == "container-started";
  });
  agent.send_raw(std::string("\xff\xff\xff\xff", 4));
  auto frames = agent.read_to_end();
  const GuestMessage* error = find_error(frames);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->code, "agent.protocol");
  EXPECT_EQ(stdout_of(frames, "app"), "finished\n");
  EXPECT_EQ(frames.back().kind, GuestMessage::Kind::kPodExit);
  EXPECT_EQ(agent.wait(), 0);
}

TEST_F(GuestAgent, ExecRunsInsideTheContainerWhenAllowed) {
  NEED_HELLO_IMAGE();
  InitData d = init_data({"/bin/sh", "-c", kServing});
  d.allow_exec = true;
  std::string raw = to_json(d);
  bind_digest(raw);
  AgentProcess agent(options());
  agent.send_init_data(raw);
  agent.read_until([](const GuestMessage& m) {
    return m.kind == GuestMessage::Kind::kOutput && m.data == "ready\n";
  });

  HostMessage exec;
  exec.kind = HostMessage::Kind::kExec;
  exec.id = 7;
  exec.container = "app";
  exec.command = {"/bin/sh", "-c", "echo from-exec; hostname; exit 3"};
  agent.send(exec);
  auto frames = agent.read_until(
      [](const GuestMessage& m) { return is_kind(m, GuestMessage::Kind::kExecExit); });
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().id, 7u);
  EXPECT_EQ(frames.back().status, 3);
  const GuestMessage* response = nullptr;
  std::string exec_out;
  for (const auto& f : frames) {
    if (is_kind(f, GuestMessage::Kind::kResponse)) response = &f;
    if (is_kind(f, GuestMessage::Kind::kOutput) && f.id == 7) exec_out += f.data;
  }
  ASSERT_NE(response, nullptr);
  EXPECT_TRUE(response->ok);
  EXPECT_EQ(response->detail, "started");
  // The exec's output carries its id; the container's own output stays id 0.
  EXPECT_EQ(exec_out, "from-exec\nhello-pod\n");

  // stdin in exec-input frames, to its end; exec-close ends one that would run on.
  HostMessage cat = exec;
  cat.id = 9;
  cat.stdin_open = true;
  cat.command = {"/bin/sh", "-c", "tr a-z A-Z; echo end"};
  agent.send(cat);
  HostMessage input;
  input.kind = HostMessage::Kind::kExecInput;
  input.id = 9;
  input.data = "typed ";
  agent.send(input);
  input.data = "line\n";
  input.eof = true;
  agent.send(input);
  frames = agent.read_until(
      [](const GuestMessage& m) { return is_kind(m, GuestMessage::Kind::kExecExit); });
  exec_out.clear();
  for (const auto& f : frames)
    if (is_kind(f, GuestMessage::Kind::kOutput) && f.id == 9) exec_out += f.data;
  EXPECT_EQ(exec_out, "TYPED LINE\nend\n");
  EXPECT_EQ(frames.back().status, 0);

  // With a pty, the end of stdin is the terminal's VEOF: cat sees its input end and exits.
  HostMessage tty = exec;
  tty.id = 11;
  tty.tty = true;
  tty.stdin_open = true;
  tty.rows = 24;
  tty.cols = 80;
  tty.command = {"/bin/cat"};
  agent.send(tty);
  input.id = 11;
  input.data = "partial";  // no newline: two VEOFs needed
  input.eof = true;
  agent.send(input);
  frames = agent.read_until(
      [](const GuestMessage& m) { return is_kind(m, GuestMessage::Kind::kExecExit); });
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().id, 11u);
  EXPECT_EQ(frames.back().status, 0);

  HostMessage forever = exec;
  forever.id = 10;
  forever.command = {"/bin/sleep", "1000"};
  agent.send(forever);
  agent.read_until([](const GuestMessage& m) { return is_kind(m, GuestMessage::Kind::kResponse); });
  HostMessage close;
  close.kind = HostMessage::Kind::kExecClose;
  close.id = 10;
  agent.send(close);
  frames = agent.read_until(
      [](const GuestMessage& m) { return is_kind(m, GuestMessage::Kind::kExecExit); });
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().id, 10u);
  EXPECT_EQ(frames.back().status, 128 + SIGKILL);

  exec.id = 8;
  exec.container = "nope";
  agent.send(exec);
  frames = agent.read_until(
      [](const GuestMessage& m) { return is_kind(m, GuestMessage::Kind::kResponse); });
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().id, 8u);
  EXPECT_FALSE(frames.back().ok);

  HostMessage shutdown;
  shutdown.kind = HostMessage::Kind::kShutdown;
  agent.send(shutdown);
  auto rest = agent.read_to_end();
  EXPECT_EQ(rest.back().kind, GuestMessage::Kind::kPodExit);
  EXPECT_EQ(agent.wait(), 0);
}

// Init containers run first, one by one; a failing one ends the pod before the others start.
TEST_F(GuestAgent, InitContainersRunFirstAndTheirFailureStopsThePod) {
  NEED_HELLO_IMAGE();
  InitData d = init_data({"/bin/sh", "-c", "echo main"});
  InitContainer first = d.containers[0];
  first.name = "first";
  first.init = true;
  first.command = {"/bin/sh", "-c", "sleep 0.3; echo first"};
  InitContainer second = first;
  second.name = "second";
  second.command = {"/bin/sh", "-c", "echo second"};
  d.containers.insert(d.containers.begin(), {first, second});
  std::string raw = to_json(d);
  bind_digest(raw);
  {
    AgentProcess agent(options());
    agent.send_init_data(raw);
    auto frames = agent.read_to_end();
    std::vector<std::string> order;
    for (const auto& f : frames)
      if (is_kind(f, GuestMessage::Kind::kOutput)) order.push_back(f.container);
    EXPECT_EQ(order, (std::vector<std::string>{"first", "second", "app"}));
    EXPECT_EQ(agent.wait(), 0);
  }

  d.containers[1].command = {"/bin/sh", "-c", "echo failing; exit 4"};
  raw = to_json(d);
  bind_digest(raw);
  auto second_run = options();
  second_run.state_dir += "-again";  // the first run's unpacked images are still there
  AgentProcess agent(std::move(second_run));
  agent.send_init_data(raw);
  auto frames = agent.read_to_end();
  EXPECT_EQ(stdout_of(frames, "second"), "failing\n");
  EXPECT_EQ(stdout_of(frames, "app"), "");
  for (const auto& f : frames)
    EXPECT_FALSE(is_kind(f, GuestMessage::Kind::kStatus) && f.state == "container-started" &&
                 f.detail == "app")
        << "the main container started after a failed init container";
  EXPECT_EQ(frames.back().kind, GuestMessage::Kind::kPodExit);
  EXPECT_EQ(frames.back().status, 4);
  EXPECT_EQ(agent.wait(), 4);
}

// A secret for env goes into every container's environment, never onto the channel.
TEST_F(GuestAgent, SecretAsAnEnvironmentVariable) {
  NEED_HELLO_IMAGE();
  const std::string secret = "s3cr3t-value";
  InitData d = init_data({"/bin/sh", "-c", "test \"$DB_PASSWORD\" = s3cr3t-value && echo match"});
  d.kbs_url = "http://127.0.0.1:9";
  d.secrets.push_back({"default/db/password", "", "DB_PASSWORD"});
  std::string raw = to_json(d);
  bind_digest(raw);
  auto o = options();
  o.secret_source = [secret](const std::string&) -> Result<Bytes> {
    return Bytes(secret.begin(), secret.end());
  };
  AgentProcess agent(std::move(o));
  agent.send_init_data(raw);
  auto frames = agent.read_to_end();
  EXPECT_EQ(stdout_of(frames, "app"), "match\n");
  for (const auto& f : frames)
    EXPECT_EQ(to_payload(f).find(secret), std::string::npos) << to_payload(f);
  EXPECT_EQ(agent.wait(), 0);
}

TEST_F(GuestAgent, PodStatusIsTheFirstNonZeroContainerStatus) {
  NEED_HELLO_IMAGE();
  InitData d = init_data({"/bin/sh", "-c", "exit 0"});
  InitContainer second = d.containers[0];
  second.name = "worker";
  second.command = {"/bin/sh", "-c", "sleep 0.3; exit 5"};
  InitContainer third = d.containers[0];
  third.name = "late";
  third.command = {"/bin/sh", "-c", "sleep 0.8; exit 9"};
  d.containers.push_back(second);
  d.containers.push_back(third);
  std::string raw = to_json(d);
  bind_digest(raw);
  AgentProcess agent(options());
  agent.send_init_data(raw);
  auto frames = agent.read_to_end();
  int exits = 0;
  for (const auto& f : frames) exits += f.kind == GuestMessage::Kind::kExit;
  EXPECT_EQ(exits, 3);
  EXPECT_EQ(frames.back().kind, GuestMessage::Kind::kPodExit);
  EXPECT_EQ(frames.back().status, 5);
  EXPECT_EQ(agent.wait(), 5);
}

TEST_F(GuestAgent, ChannelEndIsAShutdown) {
  NEED_HELLO_IMAGE();
  std::string raw = to_json(init_data({"/bin/sh", "-c", kServing}));
  bind_digest(raw);
  AgentProcess agent(options());
  agent.send_init_data(raw);
  agent.read_until([](const GuestMessage& m) {
    return m.kind == GuestMessage::Kind::kOutput && m.data == "ready\n";
  });
  agent.close_write();
  auto rest = agent.read_to_end();
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.back().kind, GuestMessage::Kind::kPodExit);
  EXPECT_EQ(agent.wait(), 0);
}

TEST_F(GuestAgent, PowerButtonIsAShutdown) {
  NEED_HELLO_IMAGE();
  std::string raw = to_json(init_data({"/bin/sh", "-c", "sleep 100"}));
  bind_digest(raw);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  UniqueFd button_write(p[1]);
  auto o = options();
  o.power_button = UniqueFd(p[0]);
  o.stop_grace = std::chrono::milliseconds(300);  // sh as PID 1 ignores SIGTERM: SIGKILL
  AgentProcess agent(std::move(o));
  agent.send_init_data(raw);
  agent.read_until([](const GuestMessage& m) {
    return m.kind == GuestMessage::Kind::kStatus && m.state == "container-started";
  });
  input_event events[2] = {};
  events[0].type = EV_KEY;
  events[0].code = KEY_POWER;
  events[0].value = 1;
  events[1].type = EV_SYN;
  ASSERT_EQ(::write(button_write.get(), events, sizeof events),
            static_cast<ssize_t>(sizeof events));
  auto rest = agent.read_to_end();
  ASSERT_GE(rest.size(), 2u);
  EXPECT_EQ(rest[rest.size() - 2].kind, GuestMessage::Kind::kExit);
  EXPECT_EQ(rest[rest.size() - 2].status, 128 + SIGKILL);
  EXPECT_EQ(rest.back().status, 128 + SIGKILL);
  EXPECT_EQ(agent.wait(), 128 + SIGKILL);
}

}  // namespace
}  // namespace confpod::guest::agent
