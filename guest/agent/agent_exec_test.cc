// Exec sessions (agent_exec.cc) through the whole agent: allowed only by init-data, into a
// running container, with stdin, a pty and their ends (fixture: agent_test_fixture.h).
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include "guest/agent/agent_test_fixture.h"

namespace confpod::guest::agent {
namespace {

namespace fs = std::filesystem;
using namespace testing_support;

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

}  // namespace
}  // namespace confpod::guest::agent
