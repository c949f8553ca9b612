// The agent against a hostile host (fixture: agent_test_fixture.h).
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
#include "guest/agent/agent_test_fixture.h"
#include "guest/agent/test_rootfs.h"
#include "guest/protocol/init_data.h"
#include "guest/protocol/messages.h"
#include "tests/support/process.h"

namespace confpod::guest::agent {
namespace {

namespace fs = std::filesystem;
using namespace testing_support;

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

// The vsock channel's behaviour (a unix socket stands in for vsock): the agent listens, greets
// each host with its hello, and a host that goes away before init-data (confpodd restarting)
// is a pause, not the end of the pod.
TEST_F(GuestAgent, AListeningAgentTakesTheHostAgainAfterItWentAway) {
  NEED_HELLO_IMAGE();
  std::string raw = to_json(init_data({"/bin/sh", "-c", "echo hi; exit 7"}));
  bind_digest(raw);
  testing::TempDir dir;
  AgentProcess agent(options(), dir.path() + "/agent.sock");
  auto is_hello = [](const GuestMessage& m) { return m.kind == GuestMessage::Kind::kHello; };
  auto first = agent.read_until(is_hello);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].version, kProtocolVersion);
  agent.reconnect();
  auto second = agent.read_until(is_hello);
  ASSERT_EQ(second.size(), 1u) << "the next host is greeted from the start of its stream";
  agent.send_init_data(raw);
  auto frames = agent.read_to_end();
  EXPECT_EQ(find_error(frames), nullptr)
      << find_error(frames)->code << ": " << find_error(frames)->detail;
  EXPECT_TRUE(has_status(frames, "init-data-verified"));
  EXPECT_EQ(stdout_of(frames, "app"), "hi\n");
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().kind, GuestMessage::Kind::kPodExit);
  EXPECT_EQ(frames.back().status, 7);
  EXPECT_EQ(agent.wait(), 7);
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
