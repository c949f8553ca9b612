#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace confpod::testing {

namespace {
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  void reset() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};
}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv) {
  return run_process(argv, ProcessInput{});
}

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessInput& input) {
  int out_pipe[2], err_pipe[2], in_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0 ||
      pipe2(in_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe2 failed");
  Fd out_r{out_pipe[0]}, out_w{out_pipe[1]}, err_r{err_pipe[0]}, err_w{err_pipe[1]};
  Fd in_r{in_pipe[0]}, in_w{in_pipe[1]};
  const bool feed = !input.stdin_text.empty();

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(feed ? in_r.fd : devnull, 0);
    dup2(out_w.fd, 1);
    dup2(err_w.fd, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  out_w.reset();
  err_w.reset();
  in_r.reset();
  if (feed) {
    // Small inputs: the pipe holds them, so writing before reading cannot deadlock.
    (void)!write(in_w.fd, input.stdin_text.data(), input.stdin_text.size());
  }
  in_w.reset();

  ProcessResult result;
  pollfd fds[2] = {{out_r.fd, POLLIN, 0}, {err_r.fd, POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_count = 2;
  char buf[4096];
  const auto start = std::chrono::steady_clock::now();
  bool signalled = false;
  while (open_count > 0) {
    int wait_ms = -1;
    if (input.kill_after.count() > 0 && !signalled) {
      auto left = input.kill_after - std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - start);
      wait_ms = static_cast<int>(std::max<long long>(0, left.count()));
      if (wait_ms == 0 || (!input.stop_when_out_has.empty() &&
                           result.out.find(input.stop_when_out_has) != std::string::npos)) {
        kill(pid, SIGTERM);
        signalled = true;
        wait_ms = -1;
      }
    }
    int r = poll(fds, 2, wait_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else {
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/confpod-test-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  std::string full = path_ + "/" + name;
  std::ofstream(full, std::ios::binary) << content;
  return full;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool wait_until(const std::function<bool()>& done, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return done();
}

}  // namespace confpod::testing
