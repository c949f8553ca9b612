// KBS handshakes over HTTP against the same handshakes through the Kbs API in process, both
// measured in this run on this machine, so the ratio is what matters:
//   in-process: auth + attest (sample evidence: binding, policy, token signing) + resource
//               (JWE to the TEE key) per second, one thread, no transport.
//   HTTP:       the same three requests per second over loopback (a fresh connection per
//               handshake, as a booting guest makes) with 1, 8 and 64 concurrent clients on the
//               server's 16 workers. Clients run on the same CPUs as the server, so on a small
//               machine the ratio includes the clients' own cost.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "attest/crypto/crypto.h"
#include "attest/kbs/kbs.h"
#include "attest/kbs/kbs_test_util.h"
#include "daemon/kbs/server.h"
#include "daemon/kbs/test_client.h"

namespace {

using namespace confpod;
using Clock = std::chrono::steady_clock;

const std::string kInitData = "version = \"0.1.0\"\n";
const std::string kResource = "default/bench/secret";

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "kbs_bench: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<kbs::Kbs> make_kbs() {
  auto store = std::make_shared<kbs::InMemoryResourceStore>();
  if (!store->put(kResource, as_bytes(std::string(64, 's'))).ok()) die("put");
  kbs::Options o;
  o.allow_insecure = true;
  // Every attested session lives token_ttl; the bench makes far more than the default 4096.
  o.max_sessions = 1u << 22;
  auto key = kbs::TokenKey::generate();
  if (!key.ok()) die("token key");
  auto k = std::make_unique<kbs::Kbs>(o, std::move(*key), store);
  kbs::ReferenceValues v;
  v.pod = "bench";
  v.tee = "sample";
  v.init_data_digest = crypto::sha256(as_bytes(kInitData));
  v.resources = {kResource};
  if (!k->set_reference_values(v).ok()) die("reference values");
  return k;
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

double api_rate(kbs::Kbs& k, const nlohmann::json& jwk, double seconds) {
  long n = 0;
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    if (!api_handshake(k, jwk)) die("in-process handshake failed");
    ++n;
  }
  return n / std::chrono::duration<double>(Clock::now() - start).count();
}

double http_rate(int port, int clients, const std::vector<nlohmann::json>& keys, double seconds) {
  std::atomic<long> done{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      const nlohmann::json& jwk = keys[static_cast<std::size_t>(i) % keys.size()];
      while (!stop.load(std::memory_order_relaxed)) {
        httplib::Client cli("127.0.0.1", port);
        cli.set_read_timeout(30, 0);
        auto h = kbs_http::testing::sample_handshake(cli, jwk, kInitData, kResource);
        if (h.ok()) {
          ++done;
        } else if (failed++ == 0) {
          std::fprintf(stderr, "kbs_bench: first failure: %d %d %d %s\n", h.auth, h.attest,
                       h.resource, h.error.c_str());
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  if (failed.load() != 0) die(std::to_string(failed.load()) + " HTTP handshakes failed");
  return static_cast<double>(done.load()) /
         std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main() {
  std::vector<nlohmann::json> keys;
  for (int i = 0; i < 8; ++i) keys.push_back(kbs::testing::make_ec_tee_key().jwk);

  auto api_kbs = make_kbs();
  api_rate(*api_kbs, keys[0], 0.3);  // warm up
  const double api = api_rate(*api_kbs, keys[0], 2.0);
  std::printf("in-process Kbs API  %8.0f handshakes/s (auth + attest + resource, sample)\n", api);

  auto http_kbs = make_kbs();
  kbs_http::ServerOptions o;
  o.listen = "127.0.0.1:0";
  auto server = kbs_http::Server::start(*http_kbs, o);
  if (!server.ok()) die(server.error().describe());
  http_rate((*server)->port(), 1, keys, 0.3);  // warm up
  for (int clients : {1, 8, 64}) {
    const double http = http_rate((*server)->port(), clients, keys, 3.0);
    std::printf("HTTP %2d client%s     %8.0f handshakes/s   in-process %8.0f/s   ratio %.3f\n",
                clients, clients == 1 ? " " : "s", http, api, http / api);
  }
  (*server)->stop();
  return 0;
}
