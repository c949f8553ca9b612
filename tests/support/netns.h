// Network namespaces for tests: everything that touches links, addresses, routes or nftables
// runs in a namespace the test made, never in the machine's own.
//
//   enter_private_netns()  moves the calling process (its main thread) into a new, empty
//                          namespace once; false where that is not allowed (no CAP_SYS_ADMIN)
//   NamedNetns ns("x")     `ip netns add` with a unique name, deleted again at scope exit; for
//                          tests that run processes (confpodd, clients) inside with `exec()`
#pragma once

#include <string>
#include <vector>

// In a gtest body: moves the test process into a namespace of its own, or skips the test
// where the machine does not allow that.
#define CONFPOD_REQUIRE_NETNS()                   \
  if (!::confpod::testing::enter_private_netns()) \
  GTEST_SKIP() << "cannot create a network namespace here (needs CAP_SYS_ADMIN)"

namespace confpod::testing {

bool enter_private_netns();

class NamedNetns {
 public:
  // Creates confpod-test-<prefix>-<pid>-<n>, with its loopback up. Throws std::runtime_error.
  explicit NamedNetns(const std::string& prefix);
  ~NamedNetns();
  NamedNetns(const NamedNetns&) = delete;
  NamedNetns& operator=(const NamedNetns&) = delete;

  const std::string& name() const { return name_; }
  // argv prefixed with `ip netns exec <name>`.
  std::vector<std::string> exec(const std::vector<std::string>& argv) const;

 private:
  std::string name_;
};

// Runs `ip` with the arguments; throws std::runtime_error with its output when it fails.
void ip(const std::vector<std::string>& args);

// A veth pair between two namespaces: `a_addr` (CIDR) on the end in `a`, `b_addr` on the end
// in `b`, both up. Names are `<prefix>a`/`<prefix>b`.
void connect_veth(const NamedNetns& a, const std::string& a_addr, const NamedNetns& b,
                  const std::string& b_addr, const std::string& prefix);

}  // namespace confpod::testing
