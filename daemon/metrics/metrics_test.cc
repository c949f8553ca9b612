// The metrics as a scraper reads them: pod states follow listener calls, KBS requests are
// counted and timed, collateral expiry keeps the earliest per kind, and the endpoint serves
// the text format over real HTTP on loopback.
#include "daemon/metrics/metrics.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <string>

namespace confpod::metrics {
namespace {

store::PodRecord pod(const std::string& name, store::PodState state) {
  store::PodRecord r;
  r.name = name;
  r.tee = "none";
  r.state = state;
  return r;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

TEST(Metrics, PodsByStateStartsAndFailures) {
  Metrics m;
  using store::PodState;
  m.pod_added(pod("a", PodState::kCreated));
  m.pod_added(pod("b", PodState::kCreated));
  m.pod_changed(pod("a", PodState::kStarting), pods::kChangeState);
  m.pod_changed(pod("a", PodState::kRunning), pods::kChangeState | pods::kChangeStartedAt);
  m.pod_changed(pod("a", PodState::kFailed), pods::kChangeState | pods::kChangeExitStatus);
  m.pod_changed(pod("a", PodState::kFailed), pods::kChangeExitStatus);  // no state change
  m.pod_removed(pod("b", PodState::kCreated));
  m.pod_removed(pod("nobody", PodState::kCreated));  // unknown: ignored
  const std::string text = m.text();
  EXPECT_TRUE(has_line(text, "confpod_pods{state=\"failed\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "confpod_pods{state=\"created\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "confpod_pods{state=\"running\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "confpod_pod_starts_total 1")) << text;
  EXPECT_TRUE(has_line(text, "confpod_pod_failures_total 1")) << text;
  EXPECT_NE(text.find("# TYPE confpod_pods gauge"), std::string::npos);
}

TEST(Metrics, KbsRequestsVerdictsAndLatency) {
  Metrics m;
  m.kbs_request("auth", 200, 0.0004);
  m.kbs_request("attest", 200, 0.02);
  m.kbs_request("attest", 401, 0.03);
  m.kbs_request("attest", 401, 0.2);
  const std::string text = m.text();
  EXPECT_TRUE(has_line(text, "confpod_kbs_requests_total{code=\"401\",route=\"attest\"} 2"))
      << text;
  EXPECT_TRUE(has_line(text, "confpod_kbs_attestations_total{verdict=\"accepted\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "confpod_kbs_attestations_total{verdict=\"rejected\"} 2")) << text;
  EXPECT_TRUE(has_line(
      text, "confpod_kbs_request_duration_seconds_bucket{route=\"attest\",le=\"0.025\"} 1"))
      << text;
  EXPECT_TRUE(has_line(text, "confpod_kbs_request_duration_seconds_count{route=\"attest\"} 3"))
      << text;
  EXPECT_TRUE(has_line(text, "confpod_kbs_request_duration_seconds_count{route=\"auth\"} 1"))
      << text;
}

TEST(Metrics, CollateralExpiryIsTheEarliestPerKindAndForgetsRemovedKinds) {
  Metrics m;
  m.collateral_expiry(
      {{"snp-vcek", 2000000000}, {"snp-vcek", 1900000000}, {"amd-crl", 1800000000}});
  std::string text = m.text();
  EXPECT_TRUE(
      has_line(text, "confpod_collateral_expiry_timestamp_seconds{kind=\"snp-vcek\"} 1900000000"))
      << text;
  EXPECT_TRUE(
      has_line(text, "confpod_collateral_expiry_timestamp_seconds{kind=\"amd-crl\"} 1800000000"))
      << text;
  m.collateral_expiry({{"snp-vcek", 2000000000}});
  text = m.text();
  EXPECT_EQ(text.find("kind=\"amd-crl\""), std::string::npos) << text;
  EXPECT_TRUE(
      has_line(text, "confpod_collateral_expiry_timestamp_seconds{kind=\"snp-vcek\"} 2000000000"))
      << text;
}

TEST(Metrics, EndpointServesTheTextFormatOnLoopback) {
  Metrics m;
  m.pod_added(pod("web", store::PodState::kRunning));
  auto endpoint = Endpoint::start("127.0.0.1:0", m.registry());
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().describe();
  const int port = (*endpoint)->port();
  ASSERT_GT(port, 0);
  httplib::Client client("127.0.0.1", port);
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(has_line(res->body, "confpod_pods{state=\"running\"} 1")) << res->body;
  EXPECT_EQ(client.Get("/other")->status, 404);
}

TEST(Metrics, EndpointThatCannotBindSaysWhere) {
  Metrics m;
  auto first = Endpoint::start("127.0.0.1:0", m.registry());
  ASSERT_TRUE(first.ok());
  const std::string taken = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = Endpoint::start(taken, m.registry());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, "metrics.listen");
  EXPECT_NE(second.error().message.find(taken), std::string::npos) << second.error().message;
}

}  // namespace
}  // namespace confpod::metrics
