#include "guest/agent/exec_input.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <string>

namespace confpod::guest::agent {
namespace {

struct Pipe {
  UniqueFd read_end, write_end;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    read_end = UniqueFd(fds[0]);
    write_end = UniqueFd(fds[1]);
  }
};

std::string read_all_now(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

TEST(ExecInput, APipeGetsTheBytesAndIsClosedAtTheEnd) {
  Pipe p;
  ExecInput in(std::move(p.write_end), false);
  ASSERT_TRUE(in.add("hello ", false));
  ASSERT_TRUE(in.add("world\n", true));
  EXPECT_FALSE(in.open()) << "the end of input closes a pipe";
  EXPECT_EQ(read_all_now(p.read_end.get()), "hello world\n");
  char c;
  EXPECT_EQ(::read(p.read_end.get(), &c, 1), 0) << "the reader sees end-of-file";
  EXPECT_TRUE(in.add("after", false)) << "input for a closed stdin goes nowhere";
}

TEST(ExecInput, ACommandThatDoesNotReadNeverBlocksAndPastTheBoundItEnds) {
  Pipe p;
  ExecInput in(std::move(p.write_end), false, 2000);
  // Fill the pipe until bytes must wait (a blocking write would hang here).
  std::size_t sent = 0;
  while (in.pending() == 0) {
    ASSERT_TRUE(in.add(std::string(1000, 'a'), false));
    sent += 1000;
  }
  EXPECT_TRUE(in.open());
  EXPECT_LE(in.pending(), 1000u);
  // Reading makes room; flush writes what waited, in order and whole.
  std::string got = read_all_now(p.read_end.get());
  in.flush();
  EXPECT_EQ(in.pending(), 0u);
  got += read_all_now(p.read_end.get());
  EXPECT_EQ(got, std::string(sent, 'a'));
  // Unread again: exactly the bound may wait, one byte more ends the input.
  while (in.pending() == 0) ASSERT_TRUE(in.add(std::string(1000, 'b'), false));
  ASSERT_TRUE(in.add(std::string(2000 - in.pending(), 'c'), false));
  EXPECT_EQ(in.pending(), 2000u);
  EXPECT_FALSE(in.add("d", false));
  EXPECT_FALSE(in.open());
  EXPECT_EQ(in.pending(), 0u);
}

TEST(ExecInput, AClosedReaderClosesTheInput) {
  Pipe p;
  ::signal(SIGPIPE, SIG_IGN);
  p.read_end.reset();
  ExecInput in(std::move(p.write_end), false);
  EXPECT_TRUE(in.add("lost", false));
  EXPECT_FALSE(in.open());
}

// A real pty in canonical mode: the end of input is VEOF, once after a full line and twice
// after a partial one (the first VEOF only delivers the line).
TEST(ExecInput, APtyEndsWithVeof) {
  for (const std::string& text : {std::string("line\n"), std::string("partial")}) {
    int master = -1, slave = -1;
    ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
    UniqueFd slave_fd(slave);
    ::fcntl(master, F_SETFL, O_NONBLOCK);
    termios t{};
    ASSERT_EQ(::tcgetattr(slave, &t), 0);
    t.c_lflag |= ICANON;
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ASSERT_EQ(::tcsetattr(slave, TCSANOW, &t), 0);
    ExecInput in(UniqueFd(master), true);
    ASSERT_TRUE(in.add(text, true));
    EXPECT_TRUE(in.open()) << "a pty master also carries output: it stays open";
    ::fcntl(slave, F_SETFL, O_NONBLOCK);
    std::string got;
    int eofs = 0;
    for (int i = 0; i < 4; ++i) {
      char buf[256];
      ssize_t n = ::read(slave, buf, sizeof buf);
      if (n == 0) ++eofs;
      if (n > 0) got.append(buf, static_cast<std::size_t>(n));
    }
    EXPECT_EQ(got, text);
    EXPECT_EQ(eofs, 1) << "the reader sees exactly one end of input after " << text;
    in.flush();  // VEOF is sent once
    char buf[16];
    EXPECT_LT(::read(slave, buf, sizeof buf), 0);
  }
}

}  // namespace
}  // namespace confpod::guest::agent
