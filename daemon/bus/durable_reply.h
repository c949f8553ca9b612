// Replies that acknowledge a change leave once the change is on disk (docs/daemon.md,
// "Durability without stalling the loop"): the pod store commits without waiting for the
// disk, and these helpers hold the reply until a flush covers the commit. Signals are not held:
// they tell what happened, the reply is what promises it lasts.
#pragma once

#include <systemd/sd-bus.h>

#include <functional>

#include "daemon/pods/manager.h"

namespace confpod::bus {

// Sends what `reply` builds for `call` once every change `manager` stored so far is durable,
// or the store's error (store.io) if the disk failed. Returns 1, as a handler whose reply is
// on its way.
int reply_when_durable(pods::Manager& manager, sd_bus_message* call,
                       std::function<int(sd_bus_message*)> reply);

// The same for an error reply: a change that failed half-way may have committed (and undone)
// rows, and the caller must not hear of the failure before the store says it on disk.
int reply_error_when_durable(pods::Manager& manager, sd_bus_message* call, Error error);

// A Manager::Done for `call`: once durable, an empty return, or the operation's error (which
// wins over the disk's).
pods::Manager::Done reply_when_done(pods::Manager& manager, sd_bus_message* call);

}  // namespace confpod::bus
