// Who may change pods (docs/dbus-api.md, "Authorization").
//
// Reading (GetPod, ListPods, properties, introspection) is open to every caller. Mutations
// (CreatePod, Start/Stop/Kill/RemovePod, the Pod methods) and GetPodLog (a log may hold
// workload output) need one of:
//   - uid 0 (the uid the bus reports for the sender: dbus-daemon takes it from SO_PEERCRED);
//   - membership of the management group (`confpod`, looked up once at start-up; a missing
//     group means root only): the sender's effective or supplementary gids, read with
//     SD_BUS_CREDS_AUGMENT;
//   - polkit action org.confpod1.manage, when polkitd is on our bus (it is only on the system
//     bus; the call never auto-starts it). Asked asynchronously: the event loop never waits.
// Anything else is org.freedesktop.DBus.Error.AccessDenied.
#pragma once

#include <sys/types.h>
#include <systemd/sd-bus.h>

#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

namespace confpod::bus {

inline constexpr const char* kPolkitAction = "org.confpod1.manage";

struct AuthPolicy {
  std::string manage_group = "confpod";  // its name, for messages
  std::optional<gid_t> manage_gid;       // nullopt (no such group): only root (and polkit)
  bool use_polkit = true;
};

// getgrnam(name): the gid, or nullopt when there is no such group.
std::optional<gid_t> lookup_group(const std::string& name);

// Whether the sender of `call` is root or in the management group (no polkit).
bool sender_privileged(sd_bus_message* call, const AuthPolicy& policy);

class Authorizer {
 public:
  // A method body: returns what an sd-bus vtable handler returns (>= 0 replied or will
  // reply; < 0 with `error` set for an error reply).
  using Action = std::function<int(sd_bus_message* call, sd_bus_error* error)>;

  explicit Authorizer(AuthPolicy policy);
  ~Authorizer();
  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  // Runs `action` now when the sender is privileged; otherwise asks polkit and runs it once
  // polkit says yes, or replies AccessDenied. Returns what the vtable handler should return.
  int authorize(sd_bus_message* call, sd_bus_error* error, Action action);

 private:
  struct Query;
  static int on_polkit_reply(sd_bus_message* reply, void* userdata, sd_bus_error* error);
  void finish(Query* query, bool allowed, const std::string& why);

  // Whether the sender is root or in the management group, remembered by its unique bus name:
  // the bus never reuses one, and a connection's credentials are fixed when it connects, so
  // the answer cannot change. Saves a synchronous GetConnectionCredentials round trip per call
  // of a busy client. Bounded; only positive answers are kept (a failed lookup is retried).
  bool privileged(sd_bus_message* call);

  AuthPolicy policy_;
  std::unordered_set<std::string> privileged_senders_;
  std::list<std::unique_ptr<Query>> queries_;
};

}  // namespace confpod::bus
