#include "tests/support/netns.h"

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>

#include "tests/support/process.h"

namespace confpod::testing {

bool enter_private_netns() {
  static const bool entered = [] {
    if (::unshare(CLONE_NEWNET) != 0) return false;
    // Loopback comes down in a new namespace; a few tests bind to it.
    ProcessResult r = run_process({"/usr/sbin/ip", "link", "set", "lo", "up"});
    return r.exit_code == 0;
  }();
  return entered;
}

void ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/sbin/ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult r = run_process(argv);
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error(cmd + "failed: " + r.err + r.out);
  }
}

NamedNetns::NamedNetns(const std::string& prefix) {
  static std::atomic<int> counter{0};
  name_ =
      "confpod-test-" + prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  ip({"netns", "add", name_});
  ip({"-n", name_, "link", "set", "lo", "up"});
}

NamedNetns::~NamedNetns() {
  // Processes still inside keep the namespace alive; the name goes regardless.
  (void)run_process({"/usr/sbin/ip", "netns", "delete", name_});
}

std::vector<std::string> NamedNetns::exec(const std::vector<std::string>& argv) const {
  std::vector<std::string> out = {"/usr/sbin/ip", "netns", "exec", name_};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

void connect_veth(const NamedNetns& a, const std::string& a_addr, const NamedNetns& b,
                  const std::string& b_addr, const std::string& prefix) {
  const std::string end_a = prefix + "a", end_b = prefix + "b";
  // Created inside `a` with the peer moved straight into `b`: never in the machine's own.
  ip({"-n", a.name(), "link", "add", end_a, "type", "veth", "peer", "name", end_b, "netns",
      b.name()});
  ip({"-n", a.name(), "addr", "add", a_addr, "dev", end_a});
  ip({"-n", b.name(), "addr", "add", b_addr, "dev", end_b});
  ip({"-n", a.name(), "link", "set", end_a, "up"});
  ip({"-n", b.name(), "link", "set", end_b, "up"});
}

}  // namespace confpod::testing
