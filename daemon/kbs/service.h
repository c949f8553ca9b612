// The KBS as confpodd runs it: the Kbs core (attest/kbs) with the daemon's signing key and
// resource store, the pods' reference values kept in step with the pod table, and the HTTP
// server (server.h) when [kbs] enabled. docs/kbs.md, "Serving".
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "attest/base/result.h"
#include "attest/kbs/kbs.h"
#include "daemon/config/config.h"
#include "daemon/kbs/server.h"
#include "daemon/pods/manager.h"

namespace confpod::kbs_http {

// The token signing key at `path`: loaded when the file exists, else a new P-256 key written
// there with mode 0600 (atomically: a temporary file renamed into place). Error kbs.signing_key.
Result<kbs::TokenKey> load_or_create_signing_key(const std::string& path);

// What the Kbs checks a pod's evidence against: for snp/tdx the Manager's reference values,
// for tee none (only when `allow_insecure`) the insecure "sample" TEE with the SHA-256 of the
// pod's (empty) init-data; the resources are the spec's secrets. pods.* and spec.invalid
// from the Manager; pods.invalid_state for tee none without allow_insecure.
Result<kbs::ReferenceValues> pod_reference_values(const pods::Manager& pods, std::string_view name,
                                                  bool allow_insecure);

// Keeps the Kbs's reference values in step with the pods: a second Listener on the Manager
// (pods::Manager::add_listener). A pod whose values cannot be computed (no measurement yet)
// is removed from the Kbs until they can.
class PodSync final : public pods::Listener {
 public:
  PodSync(kbs::Kbs& kbs, const pods::Manager& pods, bool allow_insecure)
      : kbs_(kbs), pods_(pods), allow_insecure_(allow_insecure) {}
  // Registers every pod the Manager has (after recover()).
  void sync_all();
  void sync(std::string_view name);

  void pod_added(const store::PodRecord& pod) override { sync(pod.name); }
  void pod_changed(const store::PodRecord& pod, unsigned) override { sync(pod.name); }
  void pod_removed(const store::PodRecord& pod) override { kbs_.remove_reference_values(pod.name); }

 private:
  kbs::Kbs& kbs_;
  const pods::Manager& pods_;
  bool allow_insecure_;
};

// The server options [kbs] configures.
ServerOptions server_options(const config::KbsConfig& config);

}  // namespace confpod::kbs_http
