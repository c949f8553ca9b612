// KBS handshakes over HTTP against the same handshakes through the Kbs API in process, both
// measured in this run on this machine, so the ratio is what matters:
//   in-process: auth + attest (sample evidence: binding, policy, token signing) + resource
//               (JWE to the TEE key) per second, one thread, no transport.
//               Measured before and after each HTTP run; the ratio uses their mean.
//   HTTP:       the same three requests per second over loopback (a fresh connection per
//               handshake, kept for its three requests, as a booting guest's KbsClient
//               does) with 1, 8 and 64 concurrent clients on the server's 16 workers
//               (CONFPOD_KBS_WORKERS changes that, for experiments). Clients run on the
//               same CPUs as the server, so on a small machine the ratio includes the
//               clients' own cost.
//   server CPU: the process's CPU time during an HTTP run minus what the client threads used
//               themselves (CLOCK_THREAD_CPUTIME_ID), per handshake, against the in-process
//               handshake's CPU time: what the server would do with the CPUs to itself, where
//               the wall-clock ratio also pays for the clients.
//   load:       64 clients for CONFPOD_KBS_LOAD_SECONDS (default 60): no handshake may fail;
//               p50/p99 handshake latency and the rate against the in-process one.
//   soak:       CONFPOD_KBS_SOAK_HANDSHAKES (default 20,000) more handshakes from 8 clients;
//               the process's RSS (the server's sessions, tokens, connections) after them
//               against before them: growth must stay under 5% (the driver fails otherwise).
#include <httplib.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "attest/crypto/crypto.h"
#include "attest/kbs/kbs.h"
#include "attest/kbs/kbs_test_util.h"
#include "bench/machine_costs.h"
#include "daemon/kbs/server.h"
#include "daemon/kbs/test_client.h"
#include "daemon/kbs/test_server.h"

namespace {

using namespace confpod;
using Clock = std::chrono::steady_clock;

const std::string kInitData = "version = \"0.1.0\"\n";
const std::string kResource = "default/bench/secret";

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "kbs_bench: %s\n", what.c_str());
  std::exit(1);
}

// `daemon_limits`: the session table confpodd runs with (Options' defaults: 4096 sessions, the
// oldest attested one evicted when full); otherwise one big enough for every session of the
// run, so that the in-process baseline measures handshakes only.
kbs_http::testing::TestKbs make_kbs(bool daemon_limits) {
  kbs_http::testing::TestKbsOptions o;
  o.resources = {{kResource, std::string(64, 's')}};
  o.pod = "bench";
  o.init_data = kInitData;
  if (!daemon_limits) o.kbs.max_sessions = 1u << 22;
  auto made = kbs_http::testing::TestKbs::make(std::move(o));
  if (!made.ok()) die(made.error().describe());
  return std::move(*made);
}

// One in-process handshake through the Kbs API.
bool api_handshake(kbs::Kbs& k, const nlohmann::json& jwk) {
  const UnixSeconds now = now_unix();
  kbs::Reply a = k.handle_auth(kbs_http::testing::auth_body(), now);
  if (!a.ok()) return false;
  std::string nonce = nlohmann::json::parse(a.body)["nonce"];
  kbs::Reply t = k.handle_attest(a.session_id,
                                 kbs_http::testing::sample_attestation(nonce, jwk, kInitData), now);
  if (!t.ok()) return false;
  return k.handle_resource_with_session(a.session_id, kResource, now).ok();
}

double cpu_seconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct ApiRun {
  double rate = 0;                 // handshakes per wall-clock second
  double cpu_per_handshake_s = 0;  // this thread's CPU time per handshake
};

ApiRun api_run(kbs::Kbs& k, const nlohmann::json& jwk, double seconds) {
  long n = 0;
  auto start = Clock::now();
  const double cpu_start = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
  auto deadline = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    if (!api_handshake(k, jwk)) die("in-process handshake failed");
    ++n;
  }
  ApiRun run;
  run.rate = n / std::chrono::duration<double>(Clock::now() - start).count();
  run.cpu_per_handshake_s = (cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu_start) / n;
  return run;
}

struct HttpRun {
  double rate = 0;                        // handshakes per second
  double server_cpu_per_handshake_s = 0;  // process CPU minus the clients' own, per handshake
  double client_cpu_per_handshake_s = 0;  // the client threads' own CPU, per handshake
  std::vector<double> latency_s;          // each handshake's time, sorted
  double percentile(double p) const {
    if (latency_s.empty()) return 0;
    auto i = static_cast<std::size_t>(p * static_cast<double>(latency_s.size() - 1));
    return latency_s[i];
  }
};

// `clients` threads, each a fresh connection per handshake, until `seconds` passed or (when
// `total` > 0) `total` handshakes were made. Any failure ends the driver.
HttpRun http_run(int port, int clients, const std::vector<nlohmann::json>& keys, double seconds,
                 long total = 0) {
  std::atomic<long> done{0}, failed{0}, started{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(clients));
  std::vector<double> client_cpu_s(static_cast<std::size_t>(clients));
  auto start = Clock::now();
  const double process_cpu_start = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      // A name of their own, so `perf report --comm kbs-client` tells them from the server.
      pthread_setname_np(pthread_self(), "kbs-client");
      const double cpu_start = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
      const nlohmann::json& jwk = keys[static_cast<std::size_t>(i) % keys.size()];
      auto& mine = latencies[static_cast<std::size_t>(i)];
      while (!stop.load(std::memory_order_relaxed)) {
        if (total > 0 && started++ >= total) break;
        auto t0 = Clock::now();
        httplib::Client cli("127.0.0.1", port);
        cli.set_read_timeout(30, 0);
        cli.set_keep_alive(true);  // as the guest's KbsClient: one connection per handshake
        cli.set_tcp_nodelay(true);
        auto h = kbs_http::testing::sample_handshake(cli, jwk, kInitData, kResource);
        if (h.ok()) {
          mine.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
          ++done;
        } else if (failed++ == 0) {
          std::fprintf(stderr, "kbs_bench: first failure: %d %d %d %s\n", h.auth, h.attest,
                       h.resource, h.error.c_str());
        }
      }
      client_cpu_s[static_cast<std::size_t>(i)] = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu_start;
    });
  }
  if (total == 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
  }
  for (auto& t : threads) t.join();
  // The main thread only slept meanwhile; the rest of the process is the server.
  double server_cpu_s = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - process_cpu_start;
  double all_clients_cpu_s = 0;
  for (double c : client_cpu_s) all_clients_cpu_s += c;
  server_cpu_s -= all_clients_cpu_s;
  if (failed.load() != 0) die(std::to_string(failed.load()) + " HTTP handshakes failed");
  HttpRun run;
  run.rate = static_cast<double>(done.load()) /
             std::chrono::duration<double>(Clock::now() - start).count();
  run.server_cpu_per_handshake_s = server_cpu_s / static_cast<double>(std::max(done.load(), 1L));
  run.client_cpu_per_handshake_s =
      all_clients_cpu_s / static_cast<double>(std::max(done.load(), 1L));
  for (auto& l : latencies) run.latency_s.insert(run.latency_s.end(), l.begin(), l.end());
  std::sort(run.latency_s.begin(), run.latency_s.end());
  return run;
}

// This process's resident set, in KiB (/proc/self/status VmRSS).
long rss_kib() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  std::fclose(f);
  return kib;
}

double env_number(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atof(v) : fallback;
}

}  // namespace

int main() {
  confpod::bench::print_machine_costs("kbs_bench");
  std::vector<nlohmann::json> keys;
  for (int i = 0; i < 8; ++i) keys.push_back(kbs::testing::make_ec_tee_key().jwk);

  // The in-process baseline is measured right before and right after each HTTP run and
  // averaged: this machine's speed drifts (shared hosts), and a baseline taken once at the
  // start would make the ratio follow the drift rather than the transport.
  auto api_kbs = make_kbs(false);
  api_run(*api_kbs.kbs, keys[0], 0.3);  // warm up
  auto baseline = [&] { return api_run(*api_kbs.kbs, keys[0], 1.0); };
  auto mean = [](const ApiRun& a, const ApiRun& b) {
    return ApiRun{(a.rate + b.rate) / 2, (a.cpu_per_handshake_s + b.cpu_per_handshake_s) / 2};
  };
  // One line per HTTP run: the wall-clock ratio (clients included) and the server's CPU time
  // per handshake against the in-process one (what the transport costs the server itself).
  auto report = [](const char* label, const HttpRun& http, const ApiRun& api) {
    std::printf(
        "%-19s %8.0f handshakes/s   in-process %8.0f/s   ratio %.3f   server CPU %4.0f us "
        "vs in-process %4.0f us: ratio %.3f   (clients' CPU %4.0f us)\n",
        label, http.rate, api.rate, http.rate / api.rate, http.server_cpu_per_handshake_s * 1e6,
        api.cpu_per_handshake_s * 1e6, api.cpu_per_handshake_s / http.server_cpu_per_handshake_s,
        http.client_cpu_per_handshake_s * 1e6);
  };

  auto http_kbs = make_kbs(true);
  kbs_http::ServerOptions server_options;
  server_options.workers = static_cast<std::size_t>(env_number("CONFPOD_KBS_WORKERS", 16));
  auto server = http_kbs.serve(server_options);
  if (!server.ok()) die(server.error().describe());
  http_run((*server)->port(), 1, keys, 0.3);  // warm up
  for (int clients : {1, 8}) {
    const ApiRun before = baseline();
    const HttpRun http = http_run((*server)->port(), clients, keys, 3.0);
    const ApiRun api = mean(before, baseline());
    report(clients == 1 ? "HTTP  1 client" : "HTTP  8 clients", http, api);
  }

  // Load: 64 clients, no error allowed.
  const double load_seconds = env_number("CONFPOD_KBS_LOAD_SECONDS", 60);
  const ApiRun before = baseline();
  HttpRun load = http_run((*server)->port(), 64, keys, load_seconds);
  const ApiRun api = mean(before, baseline());
  std::printf(
      "in-process Kbs API  %8.0f handshakes/s (auth + attest + resource, sample; "
      "before %.0f, after the load %.0f)\n",
      api.rate, before.rate, 2 * api.rate - before.rate);
  report("HTTP 64 clients", load, api);
  std::printf("HTTP 64 clients     %.0f s, %zu handshakes, 0 errors; p50 %.1f ms, p99 %.1f ms\n",
              load_seconds, load.latency_s.size(), load.percentile(0.50) * 1e3,
              load.percentile(0.99) * 1e3);

  // Soak: RSS after many more handshakes against RSS once the load has warmed everything up.
  const auto soak_total = static_cast<long>(env_number("CONFPOD_KBS_SOAK_HANDSHAKES", 20000));
  // The same 8 clients first (their threads' malloc arenas, connections), so that the growth
  // measured is the server's, not the clients' first use of memory.
  http_run((*server)->port(), 8, keys, 0, soak_total / 10);
  const long rss_before = rss_kib();
  HttpRun soak = http_run((*server)->port(), 8, keys, 0, soak_total);
  const long rss_after = rss_kib();
  const double growth =
      rss_before > 0 ? static_cast<double>(rss_after - rss_before) / static_cast<double>(rss_before)
                     : 0;
  std::printf(
      "soak %ld handshakes  RSS %ld KiB -> %ld KiB   growth %.1f%% (limit 5%%)   "
      "p99 %.1f ms\n",
      static_cast<long>(soak.latency_s.size()), rss_before, rss_after, growth * 100,
      soak.percentile(0.99) * 1e3);
  (*server)->stop();
  if (growth >= 0.05) die("RSS grew by more than 5% over the soak");
  return 0;
}
