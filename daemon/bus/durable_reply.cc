#include "daemon/bus/durable_reply.h"

#include <cstring>
#include <memory>

#include "daemon/bus/errors.h"
#include "daemon/pods/log.h"

namespace confpod::bus {

namespace {

// The call outlives its handler: the reply is sent from a later loop iteration.
std::shared_ptr<sd_bus_message> hold(sd_bus_message* call) {
  return std::shared_ptr<sd_bus_message>(sd_bus_message_ref(call),
                                         [](sd_bus_message* m) { sd_bus_message_unref(m); });
}

void warn_if_unsent(int r) {
  if (r < 0) pods::log_warning("cannot send reply", {{"error", std::strerror(-r)}});
}

}  // namespace

int reply_when_durable(pods::Manager& manager, sd_bus_message* call,
                       std::function<int(sd_bus_message*)> reply) {
  manager.when_durable([held = hold(call), reply = std::move(reply)](const Status& flushed) {
    warn_if_unsent(flushed.ok() ? reply(held.get()) : reply_bus_error(held.get(), flushed.error()));
  });
  return 1;
}

int reply_error_when_durable(pods::Manager& manager, sd_bus_message* call, Error error) {
  manager.when_durable([held = hold(call), error = std::move(error)](const Status&) {
    warn_if_unsent(reply_bus_error(held.get(), error));
  });
  return 1;
}

pods::Manager::Done reply_when_done(pods::Manager& manager, sd_bus_message* call) {
  return [&manager, held = hold(call)](Status status) {
    if (!status.ok()) {
      reply_error_when_durable(manager, held.get(), status.take_error());
      return;
    }
    reply_when_durable(manager, held.get(),
                       [](sd_bus_message* c) { return sd_bus_reply_method_return(c, nullptr); });
  };
}

}  // namespace confpod::bus
