// Run a real program from a test and capture what it printed and how it exited.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace confpod::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

// fork + execv (no shell); stdin is /dev/null.
ProcessResult run_process(const std::vector<std::string>& argv);

struct ProcessInput {
  std::string stdin_text;  // written to the program's stdin, which is then closed
  // SIGTERM once this much time has passed since the start, or once stdout holds
  // `stop_when_out_has` (when not empty); zero: wait for the program to end by itself.
  std::chrono::milliseconds kill_after{0};
  std::string stop_when_out_has;
};
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessInput& input);

// The whole file ("" when it cannot be read).
std::string read_text_file(const std::string& path);

// Polls `done` every 200 ms until it is true or `limit` has passed; returns its last value.
bool wait_until(const std::function<bool()>& done, std::chrono::seconds limit);

// A fresh directory under $TMPDIR removed (recursively) when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `content` to path()/name and returns the full path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

}  // namespace confpod::testing
