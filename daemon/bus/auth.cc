#include "daemon/bus/auth.h"

#include <grp.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "daemon/bus/errors.h"
#include "daemon/pods/log.h"

namespace confpod::bus {

namespace {

struct CredsUnref {
  void operator()(sd_bus_creds* creds) const { sd_bus_creds_unref(creds); }
};
using CredsPtr = std::unique_ptr<sd_bus_creds, CredsUnref>;
struct MessageUnref {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;
struct SlotUnref {
  void operator()(sd_bus_slot* slot) const { sd_bus_slot_unref(slot); }
};
using SlotPtr = std::unique_ptr<sd_bus_slot, SlotUnref>;

int deny(sd_bus_error* error, const char* what, const AuthPolicy& policy) {
  if (what == nullptr) what = "this call";
  return sd_bus_error_setf(error, kErrorAccessDenied,
                           "%s needs root, membership of group %s or polkit action %s", what,
                           policy.manage_group.c_str(), kPolkitAction);
}

}  // namespace

std::optional<gid_t> lookup_group(const std::string& name) {
  std::vector<char> buffer(4096);
  group grp{};
  group* found = nullptr;
  while (true) {
    int r = ::getgrnam_r(name.c_str(), &grp, buffer.data(), buffer.size(), &found);
    if (r == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (r != 0 || found == nullptr) return std::nullopt;
    return found->gr_gid;
  }
}

bool sender_privileged(sd_bus_message* call, const AuthPolicy& policy) {
  sd_bus_creds* raw = nullptr;
  std::uint64_t mask = SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID |
                       SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_AUGMENT;
  if (sd_bus_query_sender_creds(call, mask, &raw) < 0) return false;
  CredsPtr creds(raw);
  // The uid the bus vouches for: dbus-daemon's UnixUserID (SO_PEERCRED of the connection),
  // which sd-bus reports as the effective uid. Never one read from /proc (augmented), which a
  // recycled pid could forge.
  std::uint64_t augmented = sd_bus_creds_get_augmented_mask(raw);
  uid_t euid = 0;
  if ((augmented & SD_BUS_CREDS_EUID) != 0 || sd_bus_creds_get_euid(raw, &euid) < 0) return false;
  if (euid == 0) return true;
  if (!policy.manage_gid) return false;
  // Group lists come from /proc/<pid>/status (augmented) unless the bus sent them: use them
  // only when that process is still the user the bus named.
  uid_t uid = 0;
  if (sd_bus_creds_get_uid(raw, &uid) < 0 || uid != euid) return false;
  gid_t egid = 0;
  if (sd_bus_creds_get_egid(raw, &egid) >= 0 && egid == *policy.manage_gid) return true;
  const gid_t* gids = nullptr;
  int n = sd_bus_creds_get_supplementary_gids(raw, &gids);
  for (int i = 0; i < n; ++i)
    if (gids[i] == *policy.manage_gid) return true;
  return false;
}

struct Authorizer::Query {
  Authorizer* owner = nullptr;
  MessagePtr call;
  Action action;
  SlotPtr slot;
};

Authorizer::Authorizer(AuthPolicy policy) : policy_(std::move(policy)) {}
Authorizer::~Authorizer() = default;

bool Authorizer::privileged(sd_bus_message* call) {
  constexpr std::size_t kMaxRemembered = 4096;
  const char* sender = sd_bus_message_get_sender(call);
  // Only unique names (":1.42") identify one connection for the bus's lifetime.
  bool unique = sender != nullptr && sender[0] == ':';
  if (unique && privileged_senders_.count(sender) != 0) return true;
  if (!sender_privileged(call, policy_)) return false;
  if (unique) {
    if (privileged_senders_.size() >= kMaxRemembered) privileged_senders_.clear();
    privileged_senders_.insert(sender);
  }
  return true;
}

int Authorizer::authorize(sd_bus_message* call, sd_bus_error* error, Action action) {
  const char* member = sd_bus_message_get_member(call);
  if (privileged(call)) return action(call, error);
  const char* sender = sd_bus_message_get_sender(call);
  if (!policy_.use_polkit || sender == nullptr) return deny(error, member, policy_);

  sd_bus* bus = sd_bus_message_get_bus(call);
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_call(
      bus, &raw, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
      "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
  if (r < 0) return deny(error, member, policy_);
  MessagePtr request(raw);
  // Only a polkitd that already runs on this bus: never activate one.
  sd_bus_message_set_auto_start(raw, 0);
  std::uint32_t flags = sd_bus_message_get_allow_interactive_authorization(call) > 0 ? 1 : 0;
  r = sd_bus_message_append(raw, "(sa{sv})s", "system-bus-name", 1, "name", "s", sender,
                            kPolkitAction);
  if (r >= 0) r = sd_bus_message_append(raw, "a{ss}us", 0, flags, "");
  if (r < 0) return deny(error, member, policy_);

  auto query = std::make_unique<Query>();
  query->owner = this;
  query->call.reset(sd_bus_message_ref(call));
  query->action = std::move(action);
  sd_bus_slot* slot = nullptr;
  r = sd_bus_call_async(bus, &slot, raw, &Authorizer::on_polkit_reply, query.get(), 0);
  if (r < 0) return deny(error, member, policy_);
  query->slot.reset(slot);
  queries_.push_back(std::move(query));
  return 1;  // replied later
}

int Authorizer::on_polkit_reply(sd_bus_message* reply, void* userdata, sd_bus_error*) {
  auto* query = static_cast<Query*>(userdata);
  bool allowed = false;
  std::string why;
  if (sd_bus_message_is_method_error(reply, nullptr)) {
    const sd_bus_error* e = sd_bus_message_get_error(reply);
    why = e != nullptr && e->name != nullptr ? e->name : "polkit error";
  } else {
    int authorized = 0, challenge = 0;
    int r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
    if (r >= 0) r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
    allowed = r >= 0 && authorized != 0;
    why = allowed ? "polkit: authorized" : "polkit: not authorized";
  }
  query->owner->finish(query, allowed, why);
  return 0;
}

void Authorizer::finish(Query* query, bool allowed, const std::string& why) {
  auto it = std::find_if(queries_.begin(), queries_.end(),
                         [query](const auto& q) { return q.get() == query; });
  if (it == queries_.end()) return;
  std::unique_ptr<Query> owned = std::move(*it);
  queries_.erase(it);
  sd_bus_message* call = owned->call.get();
  sd_bus_error error = SD_BUS_ERROR_NULL;
  int r;
  if (allowed) {
    r = owned->action(call, &error);
  } else {
    const char* member = sd_bus_message_get_member(call);
    const char* sender = sd_bus_message_get_sender(call);
    pods::log_info("access denied", {{"member", member != nullptr ? member : ""},
                                     {"sender", sender != nullptr ? sender : ""},
                                     {"why", why}});
    r = deny(&error, sd_bus_message_get_member(call), policy_);
  }
  if (r < 0) {
    if (sd_bus_error_is_set(&error)) {
      sd_bus_reply_method_error(call, &error);
    } else {
      sd_bus_reply_method_errno(call, r, nullptr);
    }
  }
  sd_bus_error_free(&error);
}

}  // namespace confpod::bus
