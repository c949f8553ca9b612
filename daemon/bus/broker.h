// org.confpod1.Broker at /org/confpod1 (docs/dbus-api.md, "Broker"): the admin face of the
// embedded KBS. SetResource / DeleteResource / ListResources manage the secrets in the
// resource store; SetReferenceValues registers what a pod's evidence must show;
// ImportCollateral / ListCollateral / RemoveCollateral manage the attestation collateral the
// KBS verifies evidence with on hosts without internet (docs/collateral.md). All go through
// the Authorizer, the List methods included: resource names say which workloads hold which
// secrets. Values are never logged and never echoed in errors.
#pragma once

#include <systemd/sd-bus.h>

#include <functional>
#include <memory>
#include <vector>

#include "attest/base/result.h"
#include "attest/kbs/kbs.h"
#include "attest/kbs/resources.h"
#include "daemon/bus/auth.h"
#include "daemon/bus/names.h"
#include "daemon/store/collateral_store.h"

namespace confpod::bus {

class Broker {
 public:
  // `kbs`, `store` and `collateral` must outlive the Broker; `store` is the one the Kbs
  // releases from, `collateral` the one its collateral source reads.
  Broker(kbs::Kbs& kbs, kbs::ResourceStore& store, store::SqliteCollateralStore& collateral,
         AuthPolicy auth);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Called after an ImportCollateral that stored something and after every RemoveCollateral
  // (the metrics' expiry gauge follows the store at once, not at the next daily check).
  void on_collateral_change(std::function<void()> listener) {
    collateral_changed_ = std::move(listener);
  }

 private:
  friend Status add_broker(sd_bus* bus, Broker& broker);
  struct Handlers;
  struct SlotUnref {
    void operator()(sd_bus_slot* slot) const { sd_bus_slot_unref(slot); }
  };
  kbs::Kbs& kbs_;
  kbs::ResourceStore& store_;
  store::SqliteCollateralStore& collateral_;
  Authorizer auth_;
  std::function<void()> collateral_changed_;
  std::unique_ptr<sd_bus_slot, SlotUnref> slot_;
};

// Registers the Broker's vtable at /org/confpod1 on `bus` (does not request the name); the
// registration ends with the Broker. Error bus.setup.
Status add_broker(sd_bus* bus, Broker& broker);

}  // namespace confpod::bus
