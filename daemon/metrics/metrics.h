// confpodd's metrics in the Prometheus text format (docs/operations.md), kept with
// prometheus-cpp and served by its exposer on a loopback listener ([metrics] listen).
//
//   confpod_pods{state}                            gauge: pods by lifecycle state
//   confpod_pod_starts_total                       counter: VM launches (StartPod, restarts)
//   confpod_pod_failures_total                     counter: pods that ended "failed"
//   confpod_kbs_requests_total{route,code}         counter: KBS HTTP requests by route, status
//   confpod_kbs_attestations_total{verdict}        counter: /attest accepted | rejected
//   confpod_kbs_request_duration_seconds{route}    histogram: KBS handler time
//   confpod_collateral_expiry_timestamp_seconds{kind}  gauge: earliest notAfter per kind
//
// Pod metrics are updated from the Manager's listener calls (the event-loop thread); KBS
// metrics from its worker threads (prometheus-cpp's metrics are thread-safe).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/result.h"
#include "daemon/pods/manager.h"

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace confpod::metrics {

class Metrics final : public pods::Listener {
 public:
  Metrics();
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  void pod_added(const store::PodRecord& pod) override;
  void pod_changed(const store::PodRecord& pod, unsigned changes) override;
  void pod_removed(const store::PodRecord& pod) override;

  // One KBS request (kbs_http::ServerOptions::observe).
  void kbs_request(std::string_view route, int status, double seconds);
  // The collateral store's items as (kind, notAfter in seconds since the epoch): the gauge
  // holds the earliest per kind; kinds no longer present are dropped.
  void collateral_expiry(const std::vector<std::pair<std::string, std::int64_t>>& items);

  // Everything, in the text exposition format (what GET /metrics returns).
  std::string text() const;
  std::shared_ptr<prometheus::Registry> registry() const;

 private:
  struct Families;
  void set_state_count(const std::string& state, int delta);

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
  std::map<std::string, std::string, std::less<>> pod_states_;  // name -> state (loop thread)
};

// Serves `registry` at http://<listen>/metrics until destroyed. Error metrics.listen when the
// address cannot be bound.
class Endpoint {
 public:
  static Result<std::unique_ptr<Endpoint>> start(const std::string& listen,
                                                 std::shared_ptr<prometheus::Registry> registry);
  ~Endpoint();
  // The port bound (for listen ports of 0 in tests).
  int port() const;

 private:
  Endpoint() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace confpod::metrics
