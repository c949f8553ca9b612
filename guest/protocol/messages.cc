#include "guest/protocol/messages.h"

#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "attest/base/bytes.h"
#include "guest/protocol/init_data.h"
#include "guest/protocol/strict_json.h"

namespace confpod::guest {
namespace {

using detail::element_path;
using detail::Members;
using detail::quote_value;
using nlohmann::json;

constexpr char kInvalid[] = "guest.message.invalid";
constexpr char kTooLarge[] = "guest.frame.too_large";
// exec command arguments, as in init-data.
constexpr std::size_t kMaxExecArgs = kMaxInitArgs;
constexpr std::size_t kMaxExecArgBytes = kMaxInitStringBytes;
constexpr std::size_t kMaxAgentBytes = 256;
constexpr std::size_t kMaxStateBytes = 64;
constexpr std::size_t kMaxCodeBytes = 128;

std::uint32_t load_be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
         std::uint32_t{u[3]};
}

Error too_large(std::uint64_t declared, std::size_t max) {
  return make_error(kTooLarge, "frame of " + std::to_string(declared) +
                                   " bytes exceeds the limit of " + std::to_string(max));
}

// [a-z0-9][a-z0-9-]{0,62}: the pod spec's container name rule.
bool is_container_name(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

bool only_chars(std::string_view s, std::string_view extra) {
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          extra.find(c) != std::string_view::npos))
      return false;
  return true;
}

bool is_printable_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7f) return false;
  return true;
}

// Standard alphabet with at most two '=' at the end and a length that is a multiple of 4:
// checked here because OpenSSL's decoder also skips whitespace.
bool is_strict_base64(std::string_view s) {
  if (s.size() % 4 != 0) return false;
  std::size_t body = s.size();
  if (body > 0 && s[body - 1] == '=') --body;
  if (body + 1 == s.size() && body > 0 && s[body - 1] == '=') --body;
  for (std::size_t i = 0; i < body; ++i) {
    const char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
          c == '/'))
      return false;
  }
  return true;
}

Result<std::string> container_member(const Members& m) {
  CONFPOD_ASSIGN_OR_RETURN(std::string name, m.string("container"));
  if (!is_container_name(name))
    return m.invalid("container", "must match [a-z0-9][a-z0-9-]{0,62}, got " + quote_value(name));
  return name;
}

Result<std::string> detail_member(const Members& m) {
  CONFPOD_ASSIGN_OR_RETURN(std::string detail, m.string("detail"));
  if (detail.size() > kMaxDetailBytes)
    return m.invalid("detail", "longer than " + std::to_string(kMaxDetailBytes) + " bytes");
  return detail;
}

// "data": padded standard base64 of at most kMaxOutputChunk bytes (the encoded size is
// checked first, so an oversize chunk is never decoded).
Result<std::string> chunk_member(const Members& m) {
  CONFPOD_ASSIGN_OR_RETURN(std::string data, m.string("data"));
  constexpr std::size_t kMaxEncoded = 4 * ((kMaxOutputChunk + 2) / 3);
  if (data.size() > kMaxEncoded)
    return m.invalid("data", "more than " + std::to_string(kMaxOutputChunk) + " bytes");
  if (!is_strict_base64(data)) return m.invalid("data", "must be padded standard base64");
  auto decoded = from_base64(data);
  if (!decoded.ok()) return m.invalid("data", "must be padded standard base64");
  if (decoded->size() > kMaxOutputChunk)
    return m.invalid("data", "more than " + std::to_string(kMaxOutputChunk) + " bytes");
  return std::string(decoded->begin(), decoded->end());
}

// An exec request id: never 0 (0 marks a container's own output).
Result<std::uint64_t> exec_id(const Members& m) {
  CONFPOD_ASSIGN_OR_RETURN(std::uint64_t id, m.unsigned_integer("id"));
  if (id == 0) return m.invalid("id", "must not be 0");
  return id;
}

Result<std::uint32_t> window_size(const Members& m, std::string_view name) {
  CONFPOD_ASSIGN_OR_RETURN(std::uint64_t value, m.unsigned_integer(name));
  if (value > 4096) return m.invalid(name, "must be 0..4096, got " + std::to_string(value));
  return static_cast<std::uint32_t>(value);
}

Result<std::string> reason_member(const Members& m) {
  CONFPOD_ASSIGN_OR_RETURN(std::string reason, m.string("reason"));
  if (!reason.empty() && reason != "oom")
    return m.invalid("reason", "must be \"\" or oom, got " + quote_value(reason));
  return reason;
}

// The object and its "type", after the size cap and the strict JSON parse.
Result<json> parse_object(std::string_view payload) {
  if (payload.size() > kMaxFramePayload) return too_large(payload.size(), kMaxFramePayload);
  CONFPOD_ASSIGN_OR_RETURN(json doc, detail::parse_strict_json(payload, kInvalid, "message"));
  if (!doc.is_object())
    return make_error(kInvalid, std::string("message: must be a JSON object, got ") +
                                    detail::json_type_name(doc));
  return doc;
}

Result<std::string> type_of(const json& doc) {
  Members m(doc, "message", kInvalid);
  CONFPOD_ASSIGN_OR_RETURN(std::string type, m.string("type"));
  return type;
}

// A detail cut to kMaxDetailBytes without splitting a UTF-8 sequence.
std::string bounded_detail(const std::string& detail) {
  if (detail.size() <= kMaxDetailBytes) return detail;
  std::size_t cut = kMaxDetailBytes;
  while (cut > 0 && (static_cast<unsigned char>(detail[cut]) & 0xc0) == 0x80) --cut;
  return detail.substr(0, cut);
}

// JSON carries only UTF-8. Host messages come from checked data (init-data, D-Bus strings);
// invalid bytes become U+FFFD rather than an exception. Guest text is for people: invalid
// bytes are dropped, which never makes a detail longer than its cap.
std::string dump_host(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}
std::string dump_guest(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::ignore);
}

}  // namespace

// --- frames -----------------------------------------------------------------------------------

std::string encode_frame(std::string_view payload) {
  if (payload.size() > std::numeric_limits<std::uint32_t>::max()) std::abort();
  const auto n = static_cast<std::uint32_t>(payload.size());
  std::string out;
  out.reserve(4 + payload.size());
  out += static_cast<char>((n >> 24) & 0xff);
  out += static_cast<char>((n >> 16) & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  out += static_cast<char>(n & 0xff);
  out.append(payload);
  return out;
}

void FrameDecoder::feed(std::string_view bytes) {
  if (failed_ || oversize_) return;  // the stream cannot be resynchronised: drop the rest
  if (head_ > 0) {
    buffer_.erase(0, head_);
    scan_ -= head_;
    head_ = 0;
  }
  buffer_.append(bytes);
  // Check every length that is complete now, so nothing past an oversize one is kept.
  while (buffer_.size() - scan_ >= 4) {
    const std::uint32_t length = load_be32(buffer_.data() + scan_);
    if (length > max_) {
      buffer_.resize(scan_ + 4);
      oversize_ = true;
      declared_ = length;
      return;
    }
    if (buffer_.size() - scan_ - 4 < length) return;  // the rest belongs to this frame
    scan_ += 4 + std::size_t{length};
  }
}

Result<std::optional<std::string>> FrameDecoder::next() {
  if (failed_) return too_large(declared_, max_);
  if (buffer_.size() - head_ < 4) return std::optional<std::string>();
  const std::uint32_t length = load_be32(buffer_.data() + head_);
  if (length > max_) {
    failed_ = true;
    declared_ = length;
    buffer_.clear();
    buffer_.shrink_to_fit();
    head_ = scan_ = 0;
    return too_large(declared_, max_);
  }
  if (buffer_.size() - head_ - 4 < length) return std::optional<std::string>();
  std::string payload = buffer_.substr(head_ + 4, length);
  head_ += 4 + std::size_t{length};
  if (head_ == buffer_.size()) {
    buffer_.clear();
    head_ = scan_ = 0;
  }
  return std::optional<std::string>(std::move(payload));
}

Status FrameDecoder::finish() const {
  if (failed_ || oversize_) return too_large(declared_, max_);
  // scan_ is past every whole frame; anything after it is an unfinished one.
  if (scan_ < buffer_.size())
    return make_error("guest.frame.truncated", "stream ended " +
                                                   std::to_string(buffer_.size() - scan_) +
                                                   " bytes into an unfinished frame");
  return ok_status();
}

// --- host -> guest ----------------------------------------------------------------------------

std::string to_payload(const HostMessage& message) {
  json doc = json::object();
  switch (message.kind) {
    case HostMessage::Kind::kInitData:
      doc["type"] = "init-data";
      doc["version"] = kProtocolVersion;
      doc["body"] = message.init_data;
      break;
    case HostMessage::Kind::kExec:
      doc["type"] = "exec";
      doc["id"] = message.id;
      doc["container"] = message.container;
      doc["command"] = message.command;
      doc["tty"] = message.tty;
      doc["stdin"] = message.stdin_open;
      doc["rows"] = message.rows;
      doc["cols"] = message.cols;
      break;
    case HostMessage::Kind::kExecInput:
      doc["type"] = "exec-input";
      doc["id"] = message.id;
      doc["data"] = to_base64(as_bytes(message.data));
      doc["eof"] = message.eof;
      break;
    case HostMessage::Kind::kExecResize:
      doc["type"] = "exec-resize";
      doc["id"] = message.id;
      doc["rows"] = message.rows;
      doc["cols"] = message.cols;
      break;
    case HostMessage::Kind::kExecClose:
      doc["type"] = "exec-close";
      doc["id"] = message.id;
      break;
    case HostMessage::Kind::kShutdown:
      doc["type"] = "shutdown";
      break;
  }
  return dump_host(doc);
}

Result<HostMessage> parse_host_message(std::string_view payload) {
  CONFPOD_ASSIGN_OR_RETURN(json doc, parse_object(payload));
  CONFPOD_ASSIGN_OR_RETURN(std::string type, type_of(doc));
  Members m(doc, type, kInvalid);
  HostMessage msg;
  if (type == "init-data") {
    msg.kind = HostMessage::Kind::kInitData;
    CONFPOD_ASSIGN_OR_RETURN(std::uint64_t version, m.unsigned_integer("version"));
    if (version != kProtocolVersion)
      return m.invalid("version", "protocol version " + std::to_string(version) +
                                      " is not supported (this side speaks " +
                                      std::to_string(kProtocolVersion) + ")");
    CONFPOD_TRY(m.only({"body", "type", "version"}));
    CONFPOD_ASSIGN_OR_RETURN(msg.init_data, m.string("body"));
    if (msg.init_data.size() > kMaxInitDataBytes)
      return m.invalid("body",
                       "init-data longer than " + std::to_string(kMaxInitDataBytes) + " bytes");
  } else if (type == "exec") {
    msg.kind = HostMessage::Kind::kExec;
    CONFPOD_TRY(m.only({"cols", "command", "container", "id", "rows", "stdin", "tty", "type"}));
    CONFPOD_ASSIGN_OR_RETURN(msg.id, exec_id(m));
    CONFPOD_ASSIGN_OR_RETURN(msg.container, container_member(m));
    CONFPOD_ASSIGN_OR_RETURN(msg.tty, m.boolean("tty"));
    CONFPOD_ASSIGN_OR_RETURN(msg.stdin_open, m.boolean("stdin"));
    CONFPOD_ASSIGN_OR_RETURN(msg.rows, window_size(m, "rows"));
    CONFPOD_ASSIGN_OR_RETURN(msg.cols, window_size(m, "cols"));
    CONFPOD_ASSIGN_OR_RETURN(const json* command, m.array("command", kMaxExecArgs));
    if (command->empty()) return m.invalid("command", "must not be empty");
    for (std::size_t i = 0; i < command->size(); ++i) {
      const json& arg = (*command)[i];
      const std::string path = element_path(m.path("command"), i);
      if (!arg.is_string())
        return make_error(kInvalid,
                          path + ": must be a string, got " + detail::json_type_name(arg));
      const auto& text = arg.get_ref<const std::string&>();
      if (text.size() > kMaxExecArgBytes)
        return make_error(kInvalid,
                          path + ": longer than " + std::to_string(kMaxExecArgBytes) + " bytes");
      // execve() would silently cut the argument at a NUL.
      if (text.find('\0') != std::string::npos)
        return make_error(kInvalid, path + ": contains NUL");
      msg.command.push_back(text);
    }
  } else if (type == "exec-input") {
    msg.kind = HostMessage::Kind::kExecInput;
    CONFPOD_TRY(m.only({"data", "eof", "id", "type"}));
    CONFPOD_ASSIGN_OR_RETURN(msg.id, exec_id(m));
    CONFPOD_ASSIGN_OR_RETURN(msg.data, chunk_member(m));
    CONFPOD_ASSIGN_OR_RETURN(msg.eof, m.boolean("eof"));
  } else if (type == "exec-resize") {
    msg.kind = HostMessage::Kind::kExecResize;
    CONFPOD_TRY(m.only({"cols", "id", "rows", "type"}));
    CONFPOD_ASSIGN_OR_RETURN(msg.id, exec_id(m));
    CONFPOD_ASSIGN_OR_RETURN(msg.rows, window_size(m, "rows"));
    CONFPOD_ASSIGN_OR_RETURN(msg.cols, window_size(m, "cols"));
  } else if (type == "exec-close") {
    msg.kind = HostMessage::Kind::kExecClose;
    CONFPOD_TRY(m.only({"id", "type"}));
    CONFPOD_ASSIGN_OR_RETURN(msg.id, exec_id(m));
  } else if (type == "shutdown") {
    msg.kind = HostMessage::Kind::kShutdown;
    CONFPOD_TRY(m.only({"type"}));
  } else {
    return make_error(kInvalid, "type: unknown host message type " + quote_value(type));
  }
  return msg;
}

// --- guest -> host ----------------------------------------------------------------------------

std::string to_payload(const GuestMessage& message) {
  json doc = json::object();
  switch (message.kind) {
    case GuestMessage::Kind::kHello:
      doc["type"] = "hello";
      doc["version"] = message.version;
      doc["agent"] = message.agent;
      break;
    case GuestMessage::Kind::kStatus:
      doc["type"] = "status";
      doc["state"] = message.state;
      doc["detail"] = bounded_detail(message.detail);
      break;
    case GuestMessage::Kind::kOutput:
      doc["type"] = "output";
      doc["id"] = message.id;
      doc["container"] = message.container;
      doc["stream"] = message.stream;
      doc["data"] = to_base64(as_bytes(message.data));
      break;
    case GuestMessage::Kind::kExit:
      doc["type"] = "exit";
      doc["container"] = message.container;
      doc["status"] = message.status;
      doc["reason"] = message.reason;
      break;
    case GuestMessage::Kind::kPodExit:
      doc["type"] = "pod-exit";
      doc["status"] = message.status;
      doc["reason"] = message.reason;
      break;
    case GuestMessage::Kind::kExecExit:
      doc["type"] = "exec-exit";
      doc["id"] = message.id;
      doc["status"] = message.status;
      break;
    case GuestMessage::Kind::kError:
      doc["type"] = "error";
      doc["code"] = message.code;
      doc["detail"] = bounded_detail(message.detail);
      break;
    case GuestMessage::Kind::kResponse:
      doc["type"] = "response";
      doc["id"] = message.id;
      doc["ok"] = message.ok;
      doc["detail"] = bounded_detail(message.detail);
      break;
  }
  return dump_guest(doc);
}

Result<GuestMessage> parse_guest_message(std::string_view payload) {
  CONFPOD_ASSIGN_OR_RETURN(json doc, parse_object(payload));
  CONFPOD_ASSIGN_OR_RETURN(std::string type, type_of(doc));
  Members m(doc, type, kInvalid);
  GuestMessage msg;
  if (type == "hello") {
    msg.kind = GuestMessage::Kind::kHello;
    CONFPOD_ASSIGN_OR_RETURN(std::uint64_t version, m.unsigned_integer("version"));
    if (version > std::numeric_limits<std::uint32_t>::max())
      return m.invalid("version", "out of the 32-bit range");
    msg.version = static_cast<std::uint32_t>(version);
    if (msg.version != kProtocolVersion) return msg;  // the host refuses it by version
    CONFPOD_TRY(m.only({"agent", "type", "version"}));
    CONFPOD_ASSIGN_OR_RETURN(msg.agent, m.string("agent"));
    if (msg.agent.empty() || msg.agent.size() > kMaxAgentBytes || !is_printable_ascii(msg.agent))
      return m.invalid("agent", "must be 1 to " + std::to_string(kMaxAgentBytes) +
                                    " printable ASCII characters");
  } else if (type == "status") {
    msg.kind = GuestMessage::Kind::kStatus;
    CONFPOD_TRY(m.only({"detail", "state", "type"}));
    CONFPOD_ASSIGN_OR_RETURN(msg.state, m.string("state"));
    if (msg.state.empty() || msg.state.size() > kMaxStateBytes || !only_chars(msg.state, "-"))
      return m.invalid("state", "must match [a-z0-9-]{1,64}, got " + quote_value(msg.state));
    CONFPOD_ASSIGN_OR_RETURN(msg.detail, detail_member(m));
  } else if (type == "output") {
    msg.kind = GuestMessage::Kind::kOutput;
    CONFPOD_TRY(m.only({"container", "data", "id", "stream", "type"}));
    CONFPOD_ASSIGN_OR_RETURN(msg.id, m.unsigned_integer("id"));
    CONFPOD_ASSIGN_OR_RETURN(msg.container, container_member(m));
    CONFPOD_ASSIGN_OR_RETURN(msg.stream, m.string("stream"));
    if (msg.stream != "stdout" && msg.stream != "stderr")
      return m.invalid("stream", "must be stdout or stderr, got " + quote_value(msg.stream));
    CONFPOD_ASSIGN_OR_RETURN(msg.data, chunk_member(m));
  } else if (type == "exit") {
    msg.kind = GuestMessage::Kind::kExit;
    CONFPOD_TRY(m.only({"container", "reason", "status", "type"}));
    CONFPOD_ASSIGN_OR_RETURN(msg.container, container_member(m));
    CONFPOD_ASSIGN_OR_RETURN(msg.status, m.signed_integer("status"));
    CONFPOD_ASSIGN_OR_RETURN(msg.reason, reason_member(m));
  } else if (type == "pod-exit") {
    msg.kind = GuestMessage::Kind::kPodExit;
    CONFPOD_TRY(m.only({"reason", "status", "type"}));
    CONFPOD_ASSIGN_OR_RETURN(msg.status, m.signed_integer("status"));
    CONFPOD_ASSIGN_OR_RETURN(msg.reason, reason_member(m));
  } else if (type == "exec-exit") {
    msg.kind = GuestMessage::Kind::kExecExit;
    CONFPOD_TRY(m.only({"id", "status", "type"}));
    CONFPOD_ASSIGN_OR_RETURN(msg.id, exec_id(m));
    CONFPOD_ASSIGN_OR_RETURN(msg.status, m.signed_integer("status"));
  } else if (type == "error") {
    msg.kind = GuestMessage::Kind::kError;
    CONFPOD_TRY(m.only({"code", "detail", "type"}));
    CONFPOD_ASSIGN_OR_RETURN(msg.code, m.string("code"));
    if (msg.code.empty() || msg.code.size() > kMaxCodeBytes || !only_chars(msg.code, "._-"))
      return m.invalid("code", "must match [a-z0-9._-]{1,128}, got " + quote_value(msg.code));
    CONFPOD_ASSIGN_OR_RETURN(msg.detail, detail_member(m));
  } else if (type == "response") {
    msg.kind = GuestMessage::Kind::kResponse;
    CONFPOD_TRY(m.only({"detail", "id", "ok", "type"}));
    CONFPOD_ASSIGN_OR_RETURN(msg.id, m.unsigned_integer("id"));
    CONFPOD_ASSIGN_OR_RETURN(msg.ok, m.boolean("ok"));
    CONFPOD_ASSIGN_OR_RETURN(msg.detail, detail_member(m));
  } else {
    return make_error(kInvalid, "type: unknown guest message type " + quote_value(type));
  }
  return msg;
}

}  // namespace confpod::guest
