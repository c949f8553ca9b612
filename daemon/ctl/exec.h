// confpodctl exec and attach (docs/exec.md): a command in a running pod's container, or the
// live output of its containers, over the session socket Pod.Exec / Pod.Attach return.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "daemon/ctl/pods.h"

namespace confpod::ctl {

struct ExecArgs {
  std::string name;
  std::string container;  // "": the pod's first container
  std::vector<std::string> command;
  bool interactive = false;  // -i: our stdin goes to the command (else it gets end of input)
  bool tty = false;          // -t: a pty in the guest; our terminal in raw mode meanwhile
};

// Relays stdin/stdout/stderr (fds 0, 1, 2) until the command ends; returns its exit status
// (0..255), 1 when confpodd refused (one line on `err`), 255 when the session ended without
// a status (the pod stopped, the output was not read fast enough).
int pod_exec(const BusArgs& bus, const ExecArgs& args, std::ostream& err);

struct AttachArgs {
  std::string name;
  std::string container;  // "": every container of the pod
};
// Prints the container's output from now on until it exits (returns its status) or the pod
// stops (returns 0).
int pod_attach(const BusArgs& bus, const AttachArgs& args, std::ostream& err);

// `confpodctl exec [-it] POD [CONTAINER] -- CMD...`: how many of argv's words follow the
// first "--" after the word "exec" (the command); -1 when there is no "--".
int exec_command_words(int argc, char** argv);

}  // namespace confpod::ctl
