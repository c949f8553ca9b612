// Tests' and benchmarks' in-process KBS (header only, like test_client.h): a Kbs with an
// in-memory resource store, the `sample` TEE allowed, one pod's reference values, and its HTTP
// server on a free loopback port. Used by daemon/kbs's server tests, guest/kbs_client's tests
// and bench/kbs_bench, so that they all stand up the same KBS the same way.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/crypto/crypto.h"
#include "attest/kbs/kbs.h"
#include "daemon/kbs/server.h"

namespace confpod::kbs_http::testing {

struct TestKbsOptions {
  kbs::Options kbs;                              // allow_insecure is forced on (sample TEE)
  std::map<std::string, std::string> resources;  // path -> value
  std::string pod = "web";                       // the pod whose reference values are set
  std::string init_data;                         // its init-data (sample TEE: SHA-256 bound)
  std::vector<std::string> pod_resources;        // what it may fetch; empty: every resource
};

struct TestKbs {
  std::shared_ptr<kbs::InMemoryResourceStore> store;
  std::unique_ptr<kbs::Kbs> kbs;
  std::string token_key_pem;  // the token key's private PEM (to verify tokens in tests)

  // Errors come back as a Result: the caller's ASSERT says what failed.
  static Result<TestKbs> make(TestKbsOptions options) {
    TestKbs t;
    t.store = std::make_shared<kbs::InMemoryResourceStore>();
    std::vector<std::string> all;
    for (const auto& [path, value] : options.resources) {
      CONFPOD_TRY(t.store->put(path, as_bytes(value)));
      all.push_back(path);
    }
    options.kbs.allow_insecure = true;
    CONFPOD_ASSIGN_OR_RETURN(kbs::TokenKey key, kbs::TokenKey::generate());
    t.token_key_pem = key.private_pem();
    t.kbs = std::make_unique<kbs::Kbs>(options.kbs, std::move(key), t.store);
    kbs::ReferenceValues pod;
    pod.pod = options.pod;
    pod.tee = "sample";
    pod.init_data_digest = crypto::sha256(as_bytes(options.init_data));
    pod.resources = options.pod_resources.empty() ? all : options.pod_resources;
    CONFPOD_TRY(t.kbs->set_reference_values(pod));
    return t;
  }

  // Serves it over HTTP; the default listen address is a free loopback port.
  Result<std::unique_ptr<Server>> serve(ServerOptions options = {}) {
    if (options.listen == ServerOptions{}.listen) options.listen = "127.0.0.1:0";
    return Server::start(*kbs, std::move(options));
  }
};

}  // namespace confpod::kbs_http::testing
