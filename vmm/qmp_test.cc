#include "vmm/qmp.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>

#include "tests/support/process.h"
#include "vmm/supervisor.h"

namespace confpod::vmm {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kGreeting =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": " Debian 1:7.2"}, "capabilities": ["oob"]}})";

TEST(QmpParse, Greeting) {
  auto m = parse_qmp_message(std::string(kGreeting) + "\r\n");
  ASSERT_TRUE(m.ok()) << m.error().describe();
  EXPECT_EQ(m->kind, QmpMessage::Kind::kGreeting);
  EXPECT_EQ(m->payload["version"]["qemu"]["major"], 7);
}

TEST(QmpParse, ReturnErrorEvent) {
  auto r = parse_qmp_message(R"({"return": {"status": "running"}, "id": 4})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, QmpMessage::Kind::kReturn);
  EXPECT_EQ(r->id, 4);
  EXPECT_EQ(r->payload["status"], "running");

  auto e = parse_qmp_message(R"({"error": {"class": "GenericError", "desc": "no"}})");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, QmpMessage::Kind::kError);
  EXPECT_TRUE(e->id.is_null());

  auto ev = parse_qmp_message(
      R"({"timestamp": {"seconds": 12, "microseconds": 34}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}})");
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->kind, QmpMessage::Kind::kEvent);
  EXPECT_EQ(ev->event, "SHUTDOWN");
  EXPECT_EQ(ev->timestamp_seconds, 12);
  EXPECT_EQ(ev->timestamp_microseconds, 34);
  EXPECT_EQ(ev->payload["reason"], "guest-shutdown");
}

TEST(QmpParse, RejectsMalformed) {
  EXPECT_EQ(parse_qmp_message("{").error().code, "vmm.qmp.protocol");
  EXPECT_EQ(parse_qmp_message("[1,2]").error().code, "vmm.qmp.protocol");
  EXPECT_EQ(parse_qmp_message(R"({"hello": 1})").error().code, "vmm.qmp.protocol");
  EXPECT_EQ(parse_qmp_message(R"({"event": 5})").error().code, "vmm.qmp.protocol");
  EXPECT_EQ(parse_qmp_message(R"({"error": "x"})").error().code, "vmm.qmp.protocol");
  EXPECT_EQ(parse_qmp_message(R"({"QMP": []})").error().code, "vmm.qmp.protocol");
  EXPECT_EQ(parse_qmp_message("{\"return\": \"\xff\"}").error().code, "vmm.qmp.protocol");
  std::string deep = "{\"return\": " + std::string(200, '[') + std::string(200, ']') + "}";
  EXPECT_EQ(parse_qmp_message(deep).error().code, "vmm.qmp.protocol");
  // Brackets inside strings do not count as nesting.
  std::string brackets = R"({"return": ")" + std::string(200, '[') + R"("})";
  EXPECT_TRUE(parse_qmp_message(brackets).ok());
}

// A scripted QMP server on the other end of a socketpair.
class FakeQemu {
 public:
  explicit FakeQemu(std::function<void(FakeQemu&)> script) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    client_fd_ = UniqueFd(fds[0]);
    server_fd_ = UniqueFd(fds[1]);
    thread_ = std::thread([this, script = std::move(script)] {
      script(*this);
      server_fd_.reset();
    });
  }
  ~FakeQemu() { thread_.join(); }
  UniqueFd take_client() { return std::move(client_fd_); }

  void send(const std::string& text) {
    std::size_t off = 0;
    while (off < text.size()) {
      ssize_t n = ::send(server_fd_.get(), text.data() + off, text.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }
  // Reads one request line and returns it parsed (null on EOF).
  json receive() {
    std::string line;
    char c;
    while (::read(server_fd_.get(), &c, 1) == 1) {
      if (c == '\n') return json::parse(line);
      line.push_back(c);
    }
    return nullptr;
  }
  // Greeting + answer to qmp_capabilities.
  void handshake() {
    send(std::string(kGreeting) + "\r\n");
    json caps = receive();
    EXPECT_EQ(caps["execute"], "qmp_capabilities");
    send(R"({"return": {}, "id": )" + caps["id"].dump() + "}\r\n");
  }

 private:
  UniqueFd client_fd_, server_fd_;
  std::thread thread_;
};

TEST(QmpClient, HandshakeParsesVersion) {
  FakeQemu peer([](FakeQemu& q) { q.handshake(); });
  auto client = QmpClient::handshake(peer.take_client(), 5s);
  ASSERT_TRUE(client.ok()) << client.error().describe();
  EXPECT_EQ(client->version().to_string(), "7.2.22");
  EXPECT_EQ(client->version().package, "Debian 1:7.2");
}

TEST(QmpClient, CorrelatesByIdAndBuffersEvents) {
  FakeQemu peer([](FakeQemu& q) {
    q.handshake();
    json request = q.receive();
    EXPECT_EQ(request["execute"], "query-status");
    // An event, a stale reply with a foreign id, then ours; split across writes mid-line.
    q.send(R"({"event": "POWERDOWN", "timestamp": {"seconds": 1, "microseconds": 2}})"
           "\r\n");
    q.send(R"({"return": {"status": "paused"}, "id": 999})"
           "\r\n");
    std::string ours =
        R"({"return": {"status": "running"}, "id": )" + request["id"].dump() + "}\r\n";
    q.send(ours.substr(0, 10));
    q.send(ours.substr(10));
    q.send(R"({"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}})"
           "\r\n");
  });
  auto client = QmpClient::handshake(peer.take_client(), 5s);
  ASSERT_TRUE(client.ok()) << client.error().describe();
  auto status = client->query_status();
  ASSERT_TRUE(status.ok()) << status.error().describe();
  EXPECT_EQ(*status, "running");
  ASSERT_EQ(client->events().size(), 1u);
  EXPECT_EQ(client->events()[0].name, "POWERDOWN");
  auto shutdown = client->wait_event("SHUTDOWN", 5s);
  ASSERT_TRUE(shutdown.ok()) << shutdown.error().describe();
  EXPECT_EQ(shutdown->data["reason"], "guest-shutdown");
  EXPECT_TRUE(client->events().empty());  // POWERDOWN came before: consumed with it
}

// A guest can make QEMU emit events without end (RTC_CHANGE each time it sets the clock):
// the client keeps the newest kMaxBufferedEvents, so the last one (SHUTDOWN) is never lost.
TEST(QmpClient, AFloodOfEventsIsBounded) {
  const std::size_t flood = QmpClient::kMaxBufferedEvents * 4;
  FakeQemu peer([flood](FakeQemu& q) {
    q.handshake();
    std::string burst;
    for (std::size_t i = 0; i < flood; ++i)
      burst += R"({"event": "RTC_CHANGE", "data": {"offset": )" + std::to_string(i) + "}}\r\n";
    q.send(burst);
    q.send(R"({"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-panic"}})"
           "\r\n");
  });
  auto client = QmpClient::handshake(peer.take_client(), 5s);
  ASSERT_TRUE(client.ok()) << client.error().describe();
  while (!client->closed()) ASSERT_TRUE(client->pump(1s).ok() || client->closed());
  ASSERT_EQ(client->events().size(), QmpClient::kMaxBufferedEvents);
  EXPECT_EQ(client->dropped_events(), flood + 1 - QmpClient::kMaxBufferedEvents);
  EXPECT_EQ(client->events().back().name, "SHUTDOWN");
  EXPECT_EQ(client->events().front().data["offset"], flood + 1 - QmpClient::kMaxBufferedEvents);
}

TEST(QmpClient, CommandErrorCarriesClassAndDesc) {
  FakeQemu peer([](FakeQemu& q) {
    q.handshake();
    json request = q.receive();
    q.send(
        R"({"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}, "id": )" +
        request["id"].dump() + "}\r\n");
  });
  auto client = QmpClient::handshake(peer.take_client(), 5s);
  ASSERT_TRUE(client.ok());
  auto reply = client->execute("nope");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, "vmm.qmp.command");
  EXPECT_NE(reply.error().message.find("CommandNotFound"), std::string::npos);
}

TEST(QmpClient, PeerClosesMidCommand) {
  FakeQemu peer([](FakeQemu& q) {
    q.handshake();
    q.receive();
  });
  auto client = QmpClient::handshake(peer.take_client(), 5s);
  ASSERT_TRUE(client.ok());
  auto reply = client->execute("query-status", nullptr, 5s);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, "vmm.qmp.closed");
  EXPECT_TRUE(client->closed());
}

TEST(QmpClient, SilentPeerTimesOut) {
  std::atomic<bool> done{false};
  FakeQemu peer([&](FakeQemu& q) {
    q.handshake();
    q.receive();
    while (!done) std::this_thread::sleep_for(10ms);
  });
  auto client = QmpClient::handshake(peer.take_client(), 5s);
  ASSERT_TRUE(client.ok());
  auto start = std::chrono::steady_clock::now();
  auto reply = client->execute("query-status", nullptr, 200ms);
  done = true;
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, "vmm.qmp.timeout");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(QmpClient, OverlongLineIsRejected) {
  FakeQemu peer([](FakeQemu& q) {
    q.handshake();
    q.receive();
    q.send("{\"return\": \"" + std::string(kQmpMaxLineBytes + 16, 'a'));
  });
  auto client = QmpClient::handshake(peer.take_client(), 5s);
  ASSERT_TRUE(client.ok());
  auto reply = client->execute("query-status", nullptr, 20s);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, "vmm.qmp.too_long");
}

// QEMU 7.2 can write an event ahead of the greeting to a client that connects while it starts
// (kQmpServerOptions avoids it; another QEMU may still do it): the event is kept, the session
// proceeds.
TEST(QmpClient, AnEventBeforeTheGreetingIsKept) {
  FakeQemu peer([](FakeQemu& q) {
    q.send(R"({"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 2}})"
           "\r\n");
    q.handshake();
  });
  auto client = QmpClient::handshake(peer.take_client(), 5s);
  ASSERT_TRUE(client.ok()) << client.error().describe();
  EXPECT_EQ(client->version().to_string(), "7.2.22");
  ASSERT_EQ(client->events().size(), 1u);
  EXPECT_EQ(client->events()[0].name, "RESUME");
}

// Anything else out of place is refused, and the error shows what came.
TEST(QmpClient, AReplyBeforeTheGreetingOrASecondGreetingIsRefusedWithWhatCame) {
  {
    FakeQemu peer([](FakeQemu& q) {
      q.send(R"({"return": {"status": "running"}, "id": 7})"
             "\r\n");
    });
    auto client = QmpClient::handshake(peer.take_client(), 5s);
    ASSERT_FALSE(client.ok());
    EXPECT_EQ(client.error().code, "vmm.qmp.protocol");
    EXPECT_NE(client.error().message.find("not the greeting: return id 7 {\"status\":\"running\"}"),
              std::string::npos)
        << client.error().message;
  }
  {
    FakeQemu peer([](FakeQemu& q) {
      q.send(std::string(kGreeting) + "\r\n");
      (void)q.receive();
      q.send(std::string(kGreeting) + "\r\n");
    });
    auto client = QmpClient::handshake(peer.take_client(), 5s);
    ASSERT_FALSE(client.ok());
    EXPECT_EQ(client.error().code, "vmm.qmp.protocol");
    EXPECT_NE(client.error().message.find("second QMP greeting: greeting {"), std::string::npos)
        << client.error().message;
  }
}

TEST(QmpClient, GarbageInsteadOfGreeting) {
  FakeQemu peer([](FakeQemu& q) { q.send("SSH-2.0-OpenSSH\r\n"); });
  auto client = QmpClient::handshake(peer.take_client(), 5s);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().code, "vmm.qmp.protocol");
}

TEST(QmpClient, ConnectToMissingSocketTimesOut) {
  testing::TempDir dir;
  auto client = QmpClient::connect(dir.path() + "/nothing.sock", 100ms);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().code, "vmm.qmp.connect");
}

// The real thing: QEMU 7.2 (Debian 12) with no machine, talking QMP.
TEST(QmpRealQemu, StatusTypesVersionQuit) {
  testing::TempDir dir;
  std::string socket = dir.path() + "/qmp.sock";
  SupervisorOptions options;
  options.argv = {"/usr/bin/qemu-system-x86_64",
                  "-machine",
                  "none",
                  "-nodefaults",
                  "-display",
                  "none",
                  "-qmp",
                  "unix:" + socket + "," + kQmpServerOptions};
  options.qmp_socket = socket;
  options.pidfile = dir.path() + "/qemu.pid";
  options.log_file = dir.path() + "/qemu.log";
  auto sup = Supervisor::start(options);
  ASSERT_TRUE(sup.ok()) << sup.error().describe();
  QmpClient& qmp = sup->qmp();
  EXPECT_EQ(qmp.version().major, 7);
  auto version = qmp.query_version();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->to_string(), qmp.version().to_string());
  auto status = qmp.query_status();
  ASSERT_TRUE(status.ok()) << status.error().describe();
  EXPECT_EQ(*status, "running");
  auto types = qmp.qom_list_types();
  ASSERT_TRUE(types.ok()) << types.error().describe();
  EXPECT_TRUE(std::binary_search(types->begin(), types->end(), "memory-backend-memfd"));
  EXPECT_FALSE(std::binary_search(types->begin(), types->end(), "sev-snp-guest"));
  auto bad = qmp.execute("no-such-command");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "vmm.qmp.command");
  ASSERT_TRUE(qmp.quit().ok());
  auto exit = sup->wait_exit(10s);
  ASSERT_TRUE(exit.ok()) << exit.error().describe();
  EXPECT_EQ(exit->cause, ExitCause::kHostQuit);
  EXPECT_EQ(exit->exit_code, 0);
}

}  // namespace
}  // namespace confpod::vmm
