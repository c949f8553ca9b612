// The confpodctl verbs that talk to confpodd over D-Bus: run, create, start, stop, kill, rm,
// ps, inspect, logs (docs/cli.md).
//
// Each returns the process exit code: kExitOk; kExitRejected (1) when the daemon refused the
// request (one line on `err`: "confpodctl: <D-Bus error name>: <message>"); kExitUsage (2)
// when the spec file is unreadable or the daemon cannot be reached.
#pragma once

#include <chrono>
#include <ostream>
#include <string>

#include "attest/base/result.h"

namespace confpod::ctl {

class Client;

struct BusArgs {
  std::string address;  // --address; empty: the system bus
  unsigned timeout_seconds = 120;
};

// The D-Bus verbs' shared edges: a connection to confpodd (polkit may ask for a password when
// stdin is a terminal), and a refused request printed as one line, returning the exit code.
Result<Client> connect(const BusArgs& bus);
int fail(const Error& error, std::ostream& err);

enum class PodAction { kStart, kStop, kKill };

// run: CreatePod + StartPod; create: CreatePod. Both print the pod's name.
int pod_create(const BusArgs& bus, const std::string& spec_path, bool start, std::ostream& out,
               std::ostream& err);
// start / stop / kill: print the pod's name once the daemon has done it.
int pod_action(const BusArgs& bus, PodAction action, const std::string& name, std::ostream& out,
               std::ostream& err);
// rm [-f]: prints the pod's name.
int pod_remove(const BusArgs& bus, const std::string& name, bool force, std::ostream& out,
               std::ostream& err);
int pod_list(const BusArgs& bus, bool json, std::ostream& out, std::ostream& err);
int pod_inspect(const BusArgs& bus, const std::string& name, std::ostream& out, std::ostream& err);

struct LogsArgs {
  std::string name;
  bool follow = false;
  std::chrono::milliseconds poll_interval{500};
};
// Without follow: the log tail GetPodLog returns. With follow: polls and prints new text until
// the pod is exited or failed (or removed), or the process is interrupted.
int pod_logs(const BusArgs& bus, const LogsArgs& args, std::ostream& out, std::ostream& err);

}  // namespace confpod::ctl
