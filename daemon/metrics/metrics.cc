#include "daemon/metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <exception>

namespace confpod::metrics {

namespace {

// Every state is always exported (0 when none), so that a dashboard's sum never has holes.
constexpr std::string_view kStates[] = {"created",  "starting", "running",
                                        "stopping", "exited",   "failed"};

// KBS handler times: from a cached resource read (~100 us) to a cold TDX verification (~0.1 s)
// and a stuck client (the 10 s read timeout).
prometheus::Histogram::BucketBoundaries duration_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
}

}  // namespace

struct Metrics::Families {
  prometheus::Family<prometheus::Gauge>& pods;
  prometheus::Counter& starts;
  prometheus::Counter& failures;
  prometheus::Family<prometheus::Counter>& kbs_requests;
  prometheus::Family<prometheus::Counter>& attestations;
  prometheus::Family<prometheus::Histogram>& durations;
  prometheus::Family<prometheus::Gauge>& collateral;
  std::map<std::string, prometheus::Gauge*, std::less<>> collateral_by_kind;
};

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::Registry& r = *registry_;
  auto& pods = prometheus::BuildGauge()
                   .Name("confpod_pods")
                   .Help("Pods on this host by lifecycle state")
                   .Register(r);
  auto& starts_family = prometheus::BuildCounter()
                            .Name("confpod_pod_starts_total")
                            .Help("VM launches of pods (StartPod and restarts by policy)")
                            .Register(r);
  auto& failures_family = prometheus::BuildCounter()
                              .Name("confpod_pod_failures_total")
                              .Help("Pods that ended in state failed")
                              .Register(r);
  auto& kbs_requests = prometheus::BuildCounter()
                           .Name("confpod_kbs_requests_total")
                           .Help("KBS HTTP requests by route and status code")
                           .Register(r);
  auto& attestations = prometheus::BuildCounter()
                           .Name("confpod_kbs_attestations_total")
                           .Help("KBS attestations (POST /kbs/v0/attest) by verdict")
                           .Register(r);
  auto& durations = prometheus::BuildHistogram()
                        .Name("confpod_kbs_request_duration_seconds")
                        .Help("Time the KBS spent on a request, by route")
                        .Register(r);
  auto& collateral =
      prometheus::BuildGauge()
          .Name("confpod_collateral_expiry_timestamp_seconds")
          .Help("Earliest notAfter (Unix time) of the stored attestation collateral, by kind")
          .Register(r);
  families_.reset(new Families{pods,
                               starts_family.Add({}),
                               failures_family.Add({}),
                               kbs_requests,
                               attestations,
                               durations,
                               collateral,
                               {}});
  for (std::string_view state : kStates) pods.Add({{"state", std::string(state)}}).Set(0);
  for (const char* verdict : {"accepted", "rejected"}) attestations.Add({{"verdict", verdict}});
}

Metrics::~Metrics() = default;

std::shared_ptr<prometheus::Registry> Metrics::registry() const { return registry_; }

void Metrics::set_state_count(const std::string& state, int delta) {
  families_->pods.Add({{"state", state}}).Increment(delta);
}

void Metrics::pod_added(const store::PodRecord& pod) {
  const std::string state(store::to_string(pod.state));
  pod_states_[pod.name] = state;
  set_state_count(state, 1);
}

void Metrics::pod_changed(const store::PodRecord& pod, unsigned changes) {
  const std::string state(store::to_string(pod.state));
  auto it = pod_states_.find(pod.name);
  if (it == pod_states_.end()) {
    pod_added(pod);
  } else if (it->second != state) {
    set_state_count(it->second, -1);
    set_state_count(state, 1);
    it->second = state;
    if (pod.state == store::PodState::kFailed) families_->failures.Increment();
  }
  if ((changes & pods::kChangeStartedAt) != 0) families_->starts.Increment();
}

void Metrics::pod_removed(const store::PodRecord& pod) {
  auto it = pod_states_.find(pod.name);
  if (it == pod_states_.end()) return;
  set_state_count(it->second, -1);
  pod_states_.erase(it);
}

void Metrics::kbs_request(std::string_view route, int status, double seconds) {
  const std::string route_label(route);
  families_->kbs_requests.Add({{"route", route_label}, {"code", std::to_string(status)}})
      .Increment();
  families_->durations.Add({{"route", route_label}}, duration_buckets()).Observe(seconds);
  if (route == "attest")
    families_->attestations.Add({{"verdict", status == 200 ? "accepted" : "rejected"}}).Increment();
}

void Metrics::collateral_expiry(const std::vector<std::pair<std::string, std::int64_t>>& items) {
  std::map<std::string, std::int64_t, std::less<>> earliest;
  for (const auto& [kind, not_after] : items) {
    auto [it, inserted] = earliest.emplace(kind, not_after);
    if (!inserted) it->second = std::min(it->second, not_after);
  }
  auto& known = families_->collateral_by_kind;
  for (auto it = known.begin(); it != known.end();) {
    if (earliest.find(it->first) == earliest.end()) {
      families_->collateral.Remove(it->second);
      it = known.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [kind, not_after] : earliest) {
    auto it = known.find(kind);
    if (it == known.end())
      it = known.emplace(kind, &families_->collateral.Add({{"kind", kind}})).first;
    it->second->Set(static_cast<double>(not_after));
  }
}

std::string Metrics::text() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

Result<std::unique_ptr<Endpoint>> Endpoint::start(const std::string& listen,
                                                  std::shared_ptr<prometheus::Registry> registry) {
  std::unique_ptr<Endpoint> endpoint(new Endpoint());
  try {
    // One serving thread: a scrape every few seconds from the local agent.
    endpoint->exposer_ = std::make_unique<prometheus::Exposer>(listen, 1);
  } catch (const std::exception& e) {
    return make_error("metrics.listen", "cannot serve metrics on " + listen + ": " + e.what());
  }
  endpoint->exposer_->RegisterCollectable(registry, "/metrics");
  return endpoint;
}

Endpoint::~Endpoint() = default;

int Endpoint::port() const {
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace confpod::metrics
