#include "daemon/kbs/server.h"

#include <httplib.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "daemon/pods/log.h"

namespace confpod::kbs_http {
namespace {

constexpr const char* kJson = "application/json";
constexpr int kListenBacklog = 1024;

// A fixed set of workers and a bounded queue of accepted connections. When the queue is full
// enqueue() blocks the accept loop, so excess clients wait in the kernel's listen backlog
// instead of costing threads or memory here (dropping the task would leak its socket).
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(std::size_t workers, std::size_t capacity) : capacity_(capacity ? capacity : 1) {
    for (std::size_t i = 0; i < (workers ? workers : 1); ++i)
      threads_.emplace_back([this] { work(); });
  }
  ~BoundedPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return shutdown_ || jobs_.size() < capacity_; });
    jobs_.push_back(std::move(fn));
    not_empty_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      if (shutdown_) return;
      shutdown_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        not_empty_.wait(lock, [&] { return shutdown_ || !jobs_.empty(); });
        // Queued connections are still served after shutdown so their sockets get closed.
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
        not_full_.notify_one();
      }
      try {
        fn();
      } catch (...) {
        // httplib handles handler exceptions itself; anything else must not end the worker.
      }
    }
  }

  std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool shutdown_ = false;
};

std::string error_info(std::string_view kind, std::string_view code, std::string_view message) {
  nlohmann::json j = {{"type", std::string(kbs::kErrorTypePrefix) + std::string(kind)},
                      {"detail", std::string(code) + ": " + std::string(message)}};
  return j.dump();
}

void send(httplib::Response& res, const kbs::Reply& reply) {
  res.status = reply.status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(reply.body, kJson);
}

UnixSeconds realtime_now() { return static_cast<UnixSeconds>(std::time(nullptr)); }

// host and port of "host:port" / "[v6]:port"; the config parser checked the shape.
Result<std::pair<std::string, int>> split_listen(std::string_view listen) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return make_error("kbs.http.config", "listen must be host:port");
  std::string host(listen.substr(0, colon));
  std::string_view port_text = listen.substr(colon + 1);
  int port = 0;
  if (port_text.empty() || port_text.size() > 5)
    return make_error("kbs.http.config", "listen port must be 0..65535");
  for (char c : port_text) {
    if (c < '0' || c > '9') return make_error("kbs.http.config", "listen port must be 0..65535");
    port = port * 10 + (c - '0');
  }
  if (port > 65535) return make_error("kbs.http.config", "listen port must be 0..65535");
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return std::make_pair(host, port);
}

// libcpp-httplib.so was built with a listen backlog of 5, so a burst of clients overflows the
// accept queue. Linux lets listen() be called again on a listening socket to change its backlog:
// find ours (listening, on `port`) among our descriptors and widen it.
void widen_backlog(int port) {
  for (int fd = 0; fd < 65536; ++fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) {
      if (errno == EBADF && fd > 4096) break;
      continue;
    }
    if (!listening) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    int bound = 0;
    if (addr.ss_family == AF_INET)
      bound = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    else if (addr.ss_family == AF_INET6)
      bound = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    if (bound == port) ::listen(fd, kListenBacklog);
  }
}

}  // namespace

bool is_loopback_host(std::string_view listen) {
  auto split = split_listen(listen);
  if (!split.ok()) return false;
  const std::string& host = split->first;
  if (host == "localhost" || host == "::1") return true;
  // 127.0.0.0/8 as a dotted quad.
  if (host.rfind("127.", 0) != 0) return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

Status check_transport(std::string_view listen, std::string_view tls_cert, std::string_view tls_key,
                       bool allow_plain_http) {
  if (tls_cert.empty() != tls_key.empty())
    return make_error("kbs.http.config", "tls_cert and tls_key must be set together");
  if (tls_cert.empty() && !allow_plain_http && !is_loopback_host(listen))
    return make_error("kbs.http.config",
                      "plain HTTP on " + std::string(listen) +
                          " would expose session cookies and tokens: set tls_cert and "
                          "tls_key, listen on loopback, or set allow_plain_http = true");
  return ok_status();
}

std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    std::size_t end = header.find(';');
    std::string_view item = header.substr(0, end);
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || item.substr(0, eq) != name) continue;
    std::string_view value = item.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    return std::string(value);
  }
  return std::nullopt;
}

Server::Server(kbs::Kbs& kbs, ServerOptions options) : kbs_(kbs), options_(std::move(options)) {
  if (!options_.clock) options_.clock = realtime_now;
}

Result<std::unique_ptr<Server>> Server::start(kbs::Kbs& kbs, ServerOptions options) {
  CONFPOD_TRY(
      check_transport(options.listen, options.tls_cert, options.tls_key, options.allow_plain_http));
  CONFPOD_ASSIGN_OR_RETURN(auto host_port, split_listen(options.listen));
  std::unique_ptr<Server> s(new Server(kbs, std::move(options)));
  const ServerOptions& o = s->options_;
  if (!o.tls_cert.empty()) {
    std::string cert = o.tls_cert, key = o.tls_key;
    std::string problem;
    auto ssl = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
      if (SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION) != 1) {
        problem = "cannot require TLS 1.2";
        return false;
      }
      if (SSL_CTX_use_certificate_chain_file(&ctx, cert.c_str()) != 1) {
        problem = "cannot load the certificate chain " + cert;
        return false;
      }
      if (SSL_CTX_use_PrivateKey_file(&ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
        problem = "cannot load the private key " + key;
        return false;
      }
      if (SSL_CTX_check_private_key(&ctx) != 1) {
        problem = "the private key does not match the certificate";
        return false;
      }
      return true;
    });
    if (!ssl->is_valid())
      return make_error("kbs.http.tls", problem.empty() ? "cannot set up TLS" : problem);
    s->http_ = std::move(ssl);
    s->tls_ = true;
  } else {
    s->http_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& http = *s->http_;
  const std::size_t workers = o.workers, queue = o.queue;
  http.new_task_queue = [workers, queue] { return new BoundedPool(workers, queue); };
  http.set_payload_max_length(o.max_body);
  http.set_read_timeout(o.read_timeout);
  http.set_write_timeout(o.write_timeout);
  http.set_keep_alive_timeout(static_cast<time_t>(o.keep_alive_timeout.count()));
  http.set_keep_alive_max_count(o.keep_alive_max_requests);
  http.set_tcp_nodelay(true);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let another process of
  // the same user bind the port too and take a share of the connections.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s->install_routes();

  const auto& [host, port] = host_port;
  if (port == 0) {
    s->port_ = http.bind_to_any_port(host);
    if (s->port_ <= 0) return make_error("kbs.http.bind", "cannot bind to " + host + " (any port)");
  } else {
    if (!http.bind_to_port(host, port))
      return make_error("kbs.http.bind", "cannot bind to " + s->options_.listen);
    s->port_ = port;
  }
  widen_backlog(s->port_);
  Server* self = s.get();
  s->thread_ = std::thread([self] {
    self->http_->listen_after_bind();
    self->finished_ = true;
  });
  // stop() only works on a running server: return once it runs (or its loop has ended).
  while (!s->http_->is_running() && !s->finished_)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  pods::log_info("KBS serving", {{"listen", host + ":" + std::to_string(s->port_)},
                                 {"tls", s->tls_ ? "yes" : "no"}});
  return s;
}

Server::~Server() { stop(); }

void Server::stop() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

void Server::install_routes() {
  httplib::Server& http = *http_;
  kbs::Kbs* k = &kbs_;
  const std::function<UnixSeconds()> now = options_.clock;
  const bool secure = tls_;
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  // Each route's status and time, for the metrics.
  auto timed = [observe = options_.observe](std::string route, Handler handler) -> Handler {
    if (!observe) return handler;
    return [observe, route = std::move(route), handler = std::move(handler)](
               const httplib::Request& req, httplib::Response& res) {
      const auto start = std::chrono::steady_clock::now();
      handler(req, res);
      // httplib leaves -1 where a handler set no status, and answers 200 for it.
      observe(route, res.status == -1 ? 200 : res.status,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    };
  };

  http.Post("/kbs/v0/auth",
            timed("auth", [k, now, secure](const httplib::Request& req, httplib::Response& res) {
              kbs::Reply r = k->handle_auth(req.body, now());
              if (r.ok() && !r.session_id.empty()) {
                std::string cookie = std::string(kSessionCookie) + "=" + r.session_id +
                                     "; Path=/kbs/v0; HttpOnly; SameSite=Strict";
                if (secure) cookie += "; Secure";
                res.set_header("Set-Cookie", cookie);
              }
              send(res, r);
            }));

  auto session_of = [](const httplib::Request& req) -> std::string {
    if (!req.has_header("Cookie")) return {};
    // Several Cookie headers are allowed; the first carrying our cookie wins.
    const std::size_t n = req.get_header_value_count("Cookie");
    for (std::size_t i = 0; i < n; ++i)
      if (auto v = cookie_value(req.get_header_value("Cookie", i), kSessionCookie)) return *v;
    return {};
  };

  http.Post("/kbs/v0/attest", timed("attest", [k, now, session_of](const httplib::Request& req,
                                                                   httplib::Response& res) {
              send(res, k->handle_attest(session_of(req), req.body, now()));
            }));

  // Bounded quantifier: std::regex matching recurses per character.
  http.Get(
      R"(/kbs/v0/resource/(.{1,300}))",
      timed("resource", [k, now, session_of](const httplib::Request& req, httplib::Response& res) {
        const std::string path = req.matches[1];
        const std::string auth = req.get_header_value("Authorization");
        constexpr std::string_view kBearer = "Bearer ";
        if (auth.size() > kBearer.size() && auth.compare(0, kBearer.size(), kBearer) == 0) {
          send(res, k->handle_resource_with_token(std::string_view(auth).substr(kBearer.size()),
                                                  path, now()));
          return;
        }
        const std::string session = session_of(req);
        if (!session.empty()) {
          send(res, k->handle_resource_with_session(session, path, now()));
          return;
        }
        send(res, k->handle_resource_with_token("", path, now()));
      }));

  http.Get(std::string(kJwksPath),
           timed("jwks", [k](const httplib::Request&, httplib::Response& res) {
             res.set_header("Cache-Control", "max-age=300");
             res.set_content(k->jwks().dump(), kJson);
           }));

  // Failures httplib answers itself (413 body too large, 404 no route, 400 bad request ...)
  // get an ErrorInformation body too; replies of our handlers already have one.
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string body;
        if (res.status == 413) {
          body = error_info("SerdeError", "kbs.body.too_large", "the request body is too large");
        } else if (res.status == 404) {
          body = error_info("InvalidRequestPath", "kbs.http.path", "no such route");
        } else if (res.status == 405) {
          body = error_info("InvalidRequestPath", "kbs.http.method", "method not allowed");
        } else if (res.status >= 500) {
          body = error_info("AttestationError", "kbs.internal", "internal error");
        } else {
          body = error_info("SerdeError", "kbs.http.request",
                            "bad HTTP request (status " + std::to_string(res.status) + ")");
        }
        res.set_header("Cache-Control", "no-store");
        res.set_content(body, kJson);
        return httplib::Server::HandlerResponse::Handled;
      }));

  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.status = 500;
        res.set_content(error_info("AttestationError", "kbs.internal", "internal error"), kJson);
      });
}

}  // namespace confpod::kbs_http
