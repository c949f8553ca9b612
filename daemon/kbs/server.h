// The KBS over HTTP(S): the Trustee routes of attest/kbs (docs/kbs.md, "Serving") on
// cpp-httplib, with a bounded worker pool, body/header limits and timeouts.
//
//   POST /kbs/v0/auth                        -> Kbs::handle_auth, sets cookie kbs-session-id
//   POST /kbs/v0/attest                      -> Kbs::handle_attest (cookie)
//   GET  /kbs/v0/resource/<repo>/<type>/<tag> -> bearer token, else cookie session
//   GET  /kbs/v0/.well-known/jwks.json       -> Kbs::jwks()
//
// Every failure, including the ones httplib produces itself (413, 404, 400), carries Trustee's
// ErrorInformation JSON. Errors from start(): kbs.http.config (plain HTTP off loopback, one
// of cert/key), kbs.http.tls (certificate or key unusable), kbs.http.bind.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "attest/base/result.h"
#include "attest/base/time.h"
#include "attest/kbs/kbs.h"

namespace httplib {
class Server;
}

namespace confpod::kbs_http {

inline constexpr std::string_view kSessionCookie = "kbs-session-id";
inline constexpr std::string_view kJwksPath = "/kbs/v0/.well-known/jwks.json";

struct ServerOptions {
  std::string listen = "127.0.0.1:8080";  // host:port; port 0 picks a free port
  std::string tls_cert;                   // PEM certificate chain; empty with tls_key: HTTP
  std::string tls_key;                    // PEM private key
  bool allow_plain_http = false;          // plain HTTP off loopback
  std::size_t workers = 16;               // fixed worker threads
  std::size_t queue = 256;                // accepted connections waiting for a worker
  std::size_t max_body = kbs::kMaxAttestBody;
  std::chrono::seconds read_timeout{10};
  std::chrono::seconds write_timeout{10};
  std::chrono::seconds keep_alive_timeout{5};
  std::size_t keep_alive_max_requests = 16;
  // The time handed to the Kbs; default: the realtime clock.
  std::function<UnixSeconds()> clock;
  // Called after each request to a KBS route ("auth", "attest", "resource", "jwks") with the
  // HTTP status and the handler's time in seconds, from the worker thread (metrics).
  std::function<void(std::string_view route, int status, double seconds)> observe;
};

// True for 127.0.0.0/8, [::1] and "localhost".
bool is_loopback_host(std::string_view listen);
// The transport rule: cert and key both or neither; without TLS only a loopback listen
// address unless allow_plain_http. Error kbs.http.config.
Status check_transport(std::string_view listen, std::string_view tls_cert, std::string_view tls_key,
                       bool allow_plain_http);
// The value of cookie `name` in a Cookie header ("a=b; c=d"), or nullopt.
std::optional<std::string> cookie_value(std::string_view header, std::string_view name);

class Server {
 public:
  // Checks the transport rule, loads the TLS material, binds, and serves on a thread of its
  // own. `kbs` must outlive the Server.
  static Result<std::unique_ptr<Server>> start(kbs::Kbs& kbs, ServerOptions options);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }
  bool tls() const { return tls_; }
  // Stops accepting, finishes the requests in flight, joins the threads. Idempotent.
  void stop();

 private:
  Server(kbs::Kbs& kbs, ServerOptions options);
  void install_routes();

  kbs::Kbs& kbs_;
  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
  bool tls_ = false;
  std::atomic<bool> finished_{false};  // the listen loop has returned
};

}  // namespace confpod::kbs_http
