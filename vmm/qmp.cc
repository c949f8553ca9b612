#include "vmm/qmp.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace confpod::vmm {

namespace {

using json = nlohmann::json;

Error qmp_error(const char* code, std::string message) {
  return make_error(std::string("vmm.qmp.") + code, std::move(message));
}

// Rejects nesting deeper than kQmpMaxDepth before the JSON parser sees the bytes, so a
// hostile line cannot drive recursion anywhere (parser, destructor, dump).
bool nesting_within_limit(std::string_view text) {
  std::size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kQmpMaxDepth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

std::int64_t int_member(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return -1;
  return it->get<std::int64_t>();
}

// json::value() throws when the member has another type; the peer decides types.
std::string string_member(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

QemuVersion parse_version(const json& version) {
  QemuVersion v;
  if (!version.is_object()) return v;
  auto qemu = version.find("qemu");
  if (qemu != version.end() && qemu->is_object()) {
    auto get = [&](const char* key) {
      auto it = qemu->find(key);
      return it != qemu->end() && it->is_number_integer() ? it->get<int>() : 0;
    };
    v.major = get("major");
    v.minor = get("minor");
    v.micro = get("micro");
  }
  v.package = string_member(version, "package");
  // QEMU puts a leading space before the distribution's package string.
  v.package.erase(0, v.package.find_first_not_of(' '));
  return v;
}

// What a message that broke the protocol said, bounded: QEMU's text goes into an error that
// reaches logs, so it is cut short.
std::string excerpt(const QmpMessage& message) {
  static constexpr std::size_t kMax = 200;
  const char* kind = message.kind == QmpMessage::Kind::kGreeting ? "greeting"
                     : message.kind == QmpMessage::Kind::kReturn ? "return"
                     : message.kind == QmpMessage::Kind::kError  ? "error"
                                                                 : "event";
  // JSON-escaped throughout, so no control character from QEMU reaches a log line raw.
  auto dump = [](const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  std::string text = std::string(kind) + " ";
  if (message.kind == QmpMessage::Kind::kEvent) text += dump(message.event) + " ";
  if (!message.id.is_null()) text += "id " + dump(message.id) + " ";
  text += dump(message.payload);
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

}  // namespace

std::string QemuVersion::to_string() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(micro);
}

Result<QmpMessage> parse_qmp_message(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.size() > kQmpMaxLineBytes)
    return qmp_error("too_long", "QMP line of " + std::to_string(line.size()) + " bytes exceeds " +
                                     std::to_string(kQmpMaxLineBytes));
  if (!nesting_within_limit(line))
    return qmp_error("protocol", "QMP message nests deeper than " + std::to_string(kQmpMaxDepth));
  json parsed;
  try {
    parsed = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  } catch (const std::exception& e) {  // the non-throwing parse should not throw; be sure
    return qmp_error("protocol", std::string("QMP message unparsable: ") + e.what());
  }
  if (parsed.is_discarded()) return qmp_error("protocol", "QMP message is not valid JSON");
  if (!parsed.is_object()) return qmp_error("protocol", "QMP message is not a JSON object");

  QmpMessage message;
  if (auto id = parsed.find("id"); id != parsed.end()) message.id = *id;
  if (auto greeting = parsed.find("QMP"); greeting != parsed.end()) {
    if (!greeting->is_object()) return qmp_error("protocol", "QMP greeting is not an object");
    message.kind = QmpMessage::Kind::kGreeting;
    message.payload = *greeting;
  } else if (auto ret = parsed.find("return"); ret != parsed.end()) {
    message.kind = QmpMessage::Kind::kReturn;
    message.payload = *ret;
  } else if (auto error = parsed.find("error"); error != parsed.end()) {
    if (!error->is_object()) return qmp_error("protocol", "QMP \"error\" is not an object");
    message.kind = QmpMessage::Kind::kError;
    message.payload = *error;
  } else if (auto event = parsed.find("event"); event != parsed.end()) {
    if (!event->is_string()) return qmp_error("protocol", "QMP \"event\" is not a string");
    message.kind = QmpMessage::Kind::kEvent;
    message.event = event->get<std::string>();
    if (auto data = parsed.find("data"); data != parsed.end()) message.payload = *data;
    if (auto ts = parsed.find("timestamp"); ts != parsed.end() && ts->is_object()) {
      message.timestamp_seconds = int_member(*ts, "seconds");
      message.timestamp_microseconds = int_member(*ts, "microseconds");
    }
  } else {
    return qmp_error("protocol", "QMP message has none of QMP/return/error/event");
  }
  return message;
}

namespace detail {

int poll_timeout_ms(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  // Round up so a sub-millisecond remainder still waits instead of spinning.
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count() + 1, 1 << 30));
}

Result<UniqueFd> connect_unix(const std::string& path,
                              std::chrono::steady_clock::time_point deadline,
                              const std::string& error_prefix) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path))
    return make_error(error_prefix + ".connect", "unix socket path empty or longer than " +
                                                     std::to_string(sizeof(address.sun_path) - 1) +
                                                     " bytes: " + path);
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  while (true) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd)
      return make_error(error_prefix + ".connect", std::string("socket: ") + strerror(errno));
    // A unix-socket connect never returns EINPROGRESS: it succeeds or fails at once.
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0)
      return fd;
    int err = errno;
    bool retryable = err == ENOENT || err == ECONNREFUSED || err == EAGAIN || err == EINTR;
    if (!retryable || std::chrono::steady_clock::now() >= deadline)
      return make_error(error_prefix + ".connect", "connect " + path + ": " + strerror(err));
    // A short constant pause: QEMU creates the socket early in its start-up and the time
    // to the first successful connect is what a VM start waits on.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace detail

Result<QmpClient> QmpClient::connect(const std::string& socket_path,
                                     std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  CONFPOD_ASSIGN_OR_RETURN(UniqueFd fd, detail::connect_unix(socket_path, deadline, "vmm.qmp"));
  return handshake(std::move(fd), std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::max(deadline - Clock::now(), Clock::duration::zero())));
}

Result<QmpClient> QmpClient::handshake(UniqueFd fd, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0)
    return qmp_error("io", std::string("fcntl O_NONBLOCK: ") + strerror(errno));
  QmpClient client(std::move(fd));
  CONFPOD_ASSIGN_OR_RETURN(QmpMessage greeting, client.read_message(deadline));
  // An event ahead of the greeting is QEMU's start-up race (see kQmpServerOptions); the event
  // itself happened, so it is kept like any other.
  while (greeting.kind == QmpMessage::Kind::kEvent) {
    client.buffer_event(std::move(greeting));
    CONFPOD_ASSIGN_OR_RETURN(greeting, client.read_message(deadline));
  }
  if (greeting.kind != QmpMessage::Kind::kGreeting)
    return qmp_error("protocol", "first QMP message is not the greeting: " + excerpt(greeting));
  client.version_ = parse_version(greeting.payload.value("version", json::object()));
  // We enable no optional capability (oob): commands run in order, one at a time.
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::max(deadline - Clock::now(), Clock::duration::zero()));
  CONFPOD_TRY(client.execute("qmp_capabilities", nullptr, left));
  return client;
}

Status QmpClient::write_line(const std::string& line, Clock::time_point deadline) {
  std::size_t written = 0;
  while (written < line.size()) {
    ssize_t n = ::send(fd_.get(), line.data() + written, line.size() - written, MSG_NOSIGNAL);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{fd_.get(), POLLOUT, 0};
      int ready = ::poll(&pfd, 1, detail::poll_timeout_ms(deadline));
      if (ready == 0) return qmp_error("timeout", "QMP socket not writable before the deadline");
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      closed_ = true;
      return qmp_error("closed", "QEMU closed the QMP socket");
    }
    return qmp_error("io", std::string("QMP send: ") + strerror(errno));
  }
  return ok_status();
}

Result<QmpMessage> QmpClient::read_message(Clock::time_point deadline) {
  while (true) {
    auto newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      // Blank lines are tolerated (a peer may send a bare CR LF).
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      return parse_qmp_message(line);
    }
    if (buffer_.size() > kQmpMaxLineBytes)
      return qmp_error("too_long", "QMP line exceeds " + std::to_string(kQmpMaxLineBytes) +
                                       " bytes without a newline");
    if (closed_) return qmp_error("closed", "QEMU closed the QMP socket");
    pollfd pfd{fd_.get(), POLLIN, 0};
    int ready = ::poll(&pfd, 1, detail::poll_timeout_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return qmp_error("io", std::string("poll: ") + strerror(errno));
    if (ready == 0) return qmp_error("timeout", "no complete QMP message before the deadline");
    char chunk[65536];
    ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
    } else if (n == 0 || errno == ECONNRESET) {
      closed_ = true;
    } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      return qmp_error("io", std::string("QMP recv: ") + strerror(errno));
    }
  }
}

Result<json> QmpClient::execute(const std::string& command, const json& arguments,
                                std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::uint64_t id = next_id_++;
  json request = {{"execute", command}, {"id", id}};
  if (!arguments.is_null()) request["arguments"] = arguments;
  CONFPOD_TRY(write_line(request.dump() + "\n", deadline));
  while (true) {
    CONFPOD_ASSIGN_OR_RETURN(QmpMessage message, read_message(deadline));
    switch (message.kind) {
      case QmpMessage::Kind::kEvent:
        buffer_event(std::move(message));
        continue;
      case QmpMessage::Kind::kGreeting:
        return qmp_error("protocol", "unexpected second QMP greeting: " + excerpt(message));
      case QmpMessage::Kind::kReturn:
      case QmpMessage::Kind::kError:
        break;
    }
    // The spec says to drop replies with an unknown id. A reply without one is an error QEMU
    // raised before it could read our id; with one command in flight it is ours.
    bool ours = message.id.is_null() ||
                (message.id.is_number_unsigned() && message.id.get<std::uint64_t>() == id);
    if (!ours) continue;
    if (message.kind == QmpMessage::Kind::kReturn) return std::move(message.payload);
    std::string error_class = string_member(message.payload, "class");
    std::string desc = string_member(message.payload, "desc");
    return qmp_error("command", command + ": " + error_class + ": " + desc);
  }
}

Status QmpClient::pump(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    auto message = read_message(deadline);
    if (!message.ok()) {
      if (message.error().code == "vmm.qmp.timeout") return ok_status();
      return message.take_error();
    }
    // Replies outside execute() belong to no one (a previous timed-out command): drop them.
    if (message->kind == QmpMessage::Kind::kEvent) buffer_event(std::move(*message));
  }
}

Result<QmpEvent> QmpClient::wait_event(const std::string& name, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    auto it = std::find_if(events_.begin(), events_.end(),
                           [&](const QmpEvent& e) { return e.name == name; });
    if (it != events_.end()) {
      QmpEvent found = std::move(*it);
      events_.erase(events_.begin(), it + 1);
      return found;
    }
    auto message = read_message(deadline);
    if (!message.ok()) {
      if (message.error().code == "vmm.qmp.timeout")
        return qmp_error("timeout", "no " + name + " event before the deadline");
      return message.take_error();
    }
    if (message->kind == QmpMessage::Kind::kEvent) buffer_event(std::move(*message));
  }
}

void QmpClient::buffer_event(QmpMessage&& message) {
  if (events_.size() >= kMaxBufferedEvents) {
    events_.pop_front();
    ++dropped_events_;
  }
  events_.push_back(QmpEvent{std::move(message.event), std::move(message.payload),
                             message.timestamp_seconds, message.timestamp_microseconds});
}

std::vector<QmpEvent> QmpClient::take_events() {
  std::vector<QmpEvent> out(std::make_move_iterator(events_.begin()),
                            std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

Result<std::string> QmpClient::query_status() {
  CONFPOD_ASSIGN_OR_RETURN(json status, execute("query-status"));
  if (!status.is_object() || !status.contains("status") || !status["status"].is_string())
    return qmp_error("protocol", "query-status reply has no \"status\" string");
  return status["status"].get<std::string>();
}

Status QmpClient::system_powerdown() {
  CONFPOD_TRY(execute("system_powerdown"));
  return ok_status();
}

Status QmpClient::quit() {
  auto reply = execute("quit");
  // QEMU may close the socket before our read sees the reply; either way it is exiting.
  if (!reply.ok() && reply.error().code != "vmm.qmp.closed") return reply.take_error();
  return ok_status();
}

Result<std::vector<std::string>> QmpClient::qom_list_types(const std::string& implements) {
  json arguments = json::object();
  if (!implements.empty()) arguments["implements"] = implements;
  arguments["abstract"] = false;
  CONFPOD_ASSIGN_OR_RETURN(json types, execute("qom-list-types", arguments));
  if (!types.is_array()) return qmp_error("protocol", "qom-list-types reply is not an array");
  std::vector<std::string> names;
  for (const auto& type : types)
    if (type.is_object() && type.contains("name") && type["name"].is_string())
      names.push_back(type["name"].get<std::string>());
  std::sort(names.begin(), names.end());
  return names;
}

Result<QemuVersion> QmpClient::query_version() {
  CONFPOD_ASSIGN_OR_RETURN(json version, execute("query-version"));
  return parse_version(version);
}

}  // namespace confpod::vmm
