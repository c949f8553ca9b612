#include "daemon/pods/guest_image.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <vector>

#include "attest/base/unique_fd.h"

extern char** environ;

namespace confpod::pods {
namespace {

Error image_error(const std::string& message) { return make_error("guest.image", message); }

// The last `n` bytes of `text`, for error messages.
std::string tail(const std::string& text, std::size_t n = 2000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

}  // namespace

Result<GuestImagePaths> build_guest_image(const GuestImageBuild& build) {
  if (::access(build.builder.c_str(), X_OK) != 0)
    return image_error("guest image builder " + build.builder +
                       " is not executable: " + std::strerror(errno));
  if (::access(build.agent.c_str(), R_OK) != 0)
    return image_error("guest agent " + build.agent + " is not readable: " + std::strerror(errno));
  std::error_code ec;
  std::filesystem::create_directories(build.out_dir, ec);
  if (ec) return image_error("cannot create " + build.out_dir + ": " + ec.message());

  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0)
    return image_error(std::string("pipe: ") + std::strerror(errno));
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0)
    return image_error(std::string("pipe: ") + std::strerror(errno));
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), 2);
  // The daemon blocks SIGTERM/SIGINT for its signalfd; the builder must start with none blocked.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  std::vector<std::string> args = {build.builder, "--out-dir", build.out_dir, "--agent",
                                   build.agent};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int spawned = ::posix_spawn(&pid, build.builder.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  out_write.reset();
  err_write.reset();
  if (spawned != 0)
    return image_error("cannot run " + build.builder + ": " + std::strerror(spawned));

  // Read both pipes to EOF (the builder's output is small), bounded by the timeout.
  std::string out, err;
  auto deadline = std::chrono::steady_clock::now() + build.timeout;
  bool timed_out = false;
  while (out_read || err_read) {
    pollfd fds[2] = {{out_read ? out_read.get() : -1, POLLIN, 0},
                     {err_read ? err_read.get() : -1, POLLIN, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    int r = ::poll(fds, 2, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      char buf[4096];
      UniqueFd& fd = i == 0 ? out_read : err_read;
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n <= 0) {
        fd.reset();
        continue;
      }
      std::string& into = i == 0 ? out : err;
      if (into.size() < (1u << 20)) into.append(buf, static_cast<std::size_t>(n));
    }
  }
  if (timed_out) ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    return image_error(build.builder + " did not finish within " +
                       std::to_string(build.timeout.count()) + " s: " + tail(err));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return image_error(build.builder + " failed (status " +
                       std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                       "): " + tail(err));

  GuestImagePaths paths;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("kernel=", 0) == 0) paths.kernel = line.substr(7);
    if (line.rfind("initrd=", 0) == 0) paths.initrd = line.substr(7);
  }
  if (paths.kernel.empty() || paths.initrd.empty())
    return image_error(build.builder + " printed no kernel= and initrd= lines: " + tail(out));
  return paths;
}

}  // namespace confpod::pods
