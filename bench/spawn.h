// The baseline launchers' way to start a QEMU argv: posix_spawn with stdin, stdout and stderr
// on /dev/null and nothing else. glibc's posix_spawn runs the child in the caller's address
// space until execve (vfork semantics) and returns once execve succeeded or failed, which is
// the cheapest start there is and what vmm::Supervisor does too: a baseline must not pay for a
// fork that the subject no longer pays for.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace confpod::bench {

// 0 and the child's pid in `pid`, or the errno of what failed (execve's included).
inline int spawn_quiet(const std::vector<std::string>& argv_strings, pid_t& pid) {
  std::vector<char*> argv;
  for (const auto& a : argv_strings) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  if (int e = posix_spawn_file_actions_init(&actions); e != 0) return e;
  int e = 0;
  for (int fd = 0; fd < 3 && e == 0; ++fd)
    e = posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0);
  if (e == 0) e = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return e;
}

}  // namespace confpod::bench
