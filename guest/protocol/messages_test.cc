#include "guest/protocol/messages.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "guest/protocol/init_data.h"

namespace confpod::guest {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::string be32(std::uint32_t n) {
  return {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
          static_cast<char>(n)};
}

// --- frames -----------------------------------------------------------------------------------

TEST(GuestProtocolFrame, EncodesBigEndianLengthThenPayload) {
  EXPECT_EQ(encode_frame("abc"), std::string("\0\0\0\3abc", 7));
  EXPECT_EQ(encode_frame(""), std::string(4, '\0'));
  EXPECT_EQ(encode_frame(std::string(0x010203, 'x')).substr(0, 4), std::string("\0\1\2\3", 4));
}

TEST(GuestProtocolFrame, DecodesFramesSplitAcrossManyFeeds) {
  const std::string stream = encode_frame("first") + encode_frame("") +
                             encode_frame(std::string(1000, 'z')) + encode_frame("last");
  FrameDecoder decoder;
  std::vector<std::string> got;
  for (char c : stream) {  // one byte at a time
    decoder.feed(std::string_view(&c, 1));
    while (true) {
      auto next = decoder.next();
      ASSERT_TRUE(next.ok()) << next.error().describe();
      if (!next->has_value()) break;
      got.push_back(**next);
    }
  }
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], "first");
  EXPECT_EQ(got[1], "");
  EXPECT_EQ(got[2], std::string(1000, 'z'));
  EXPECT_EQ(got[3], "last");
  EXPECT_TRUE(decoder.finish().ok());
}

TEST(GuestProtocolFrame, DecodesSeveralFramesFromOneFeed) {
  FrameDecoder decoder;
  decoder.feed(encode_frame("a") + encode_frame("bb") + encode_frame("ccc").substr(0, 5));
  EXPECT_EQ(**decoder.next(), "a");
  EXPECT_EQ(**decoder.next(), "bb");
  EXPECT_FALSE(decoder.next()->has_value());
  Status truncated = decoder.finish();
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().code, "guest.frame.truncated");
  EXPECT_THAT(truncated.error().message, HasSubstr("5 bytes into an unfinished frame"));
  decoder.feed("cc");
  EXPECT_EQ(**decoder.next(), "ccc");
  EXPECT_TRUE(decoder.finish().ok());
}

TEST(GuestProtocolFrame, RefusesOversizeLengthBeforeThePayloadArrives) {
  FrameDecoder decoder(16);
  decoder.feed(encode_frame("ok"));
  decoder.feed(be32(17));  // only the length: no payload byte has been sent
  EXPECT_EQ(**decoder.next(), "ok");
  auto next = decoder.next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.error().code, "guest.frame.too_large");
  EXPECT_EQ(next.error().message, "frame of 17 bytes exceeds the limit of 16");
  // Failed for good: more bytes, even a valid frame, change nothing.
  decoder.feed(encode_frame("again"));
  EXPECT_EQ(decoder.next().error().code, "guest.frame.too_large");
  EXPECT_EQ(decoder.finish().error().code, "guest.frame.too_large");
}

TEST(GuestProtocolFrame, DefaultLimitIsOneMebibyte) {
  FrameDecoder decoder;
  decoder.feed(be32(kMaxFramePayload + 1));
  EXPECT_EQ(decoder.next().error().code, "guest.frame.too_large");
  FrameDecoder max_ok;
  max_ok.feed(be32(0xffffffffu).substr(0, 3));  // incomplete length: nothing to say yet
  EXPECT_FALSE(max_ok.next()->has_value());
  max_ok.feed(std::string(1, '\xff'));
  EXPECT_EQ(max_ok.next().error().code, "guest.frame.too_large");
}

TEST(GuestProtocolFrame, BuffersNothingPastAnOversizeLength) {
  FrameDecoder decoder(16);
  // A frame that would be refused, followed by a flood in the same and later feeds.
  decoder.feed(encode_frame("fine") + be32(1u << 30) + std::string(1 << 16, 'x'));
  decoder.feed(std::string(1 << 16, 'y'));
  EXPECT_EQ(decoder.finish().error().code, "guest.frame.too_large");
  EXPECT_EQ(**decoder.next(), "fine");  // frames before the bad one are still delivered
  EXPECT_EQ(decoder.next().error().code, "guest.frame.too_large");
}

TEST(GuestProtocolFrame, TruncatedStream) {
  FrameDecoder decoder;
  EXPECT_TRUE(decoder.finish().ok());  // nothing at all is a clean end
  decoder.feed(std::string("\0\0", 2));
  EXPECT_EQ(decoder.finish().error().code, "guest.frame.truncated");
  decoder.feed(std::string("\0\4ab", 4));
  EXPECT_FALSE(decoder.next()->has_value());
  EXPECT_EQ(decoder.finish().error().code, "guest.frame.truncated");
}

// --- host -> guest ----------------------------------------------------------------------------

void expect_host_refused(const std::string& payload, const std::string& needle,
                         const std::string& code = "guest.message.invalid") {
  auto r = parse_host_message(payload);
  ASSERT_FALSE(r.ok()) << payload.substr(0, 200);
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_THAT(r.error().message, HasSubstr(needle));
}

void expect_guest_refused(const std::string& payload, const std::string& needle,
                          const std::string& code = "guest.message.invalid") {
  auto r = parse_guest_message(payload);
  ASSERT_FALSE(r.ok()) << payload.substr(0, 200);
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_THAT(r.error().message, HasSubstr(needle));
}

TEST(GuestProtocolHostMessage, RoundTripsEachKind) {
  HostMessage init;
  init.kind = HostMessage::Kind::kInitData;
  init.init_data = "{\"pod\":\"p\",\"x\":\"quote \\\" and \\\\\"}";
  HostMessage exec;
  exec.kind = HostMessage::Kind::kExec;
  exec.id = 18446744073709551615u;
  exec.container = "web";
  exec.command = {"/bin/sh", "-c", "echo 'hi'\n"};
  HostMessage shell = exec;
  shell.id = 7;
  shell.tty = true;
  shell.stdin_open = true;
  shell.rows = 24;
  shell.cols = 4096;
  HostMessage input;
  input.kind = HostMessage::Kind::kExecInput;
  input.id = 7;
  input.data = std::string("ls\r\0\xff", 5);
  input.eof = true;
  HostMessage resize;
  resize.kind = HostMessage::Kind::kExecResize;
  resize.id = 7;
  resize.rows = 50;
  resize.cols = 132;
  HostMessage close;
  close.kind = HostMessage::Kind::kExecClose;
  close.id = 7;
  HostMessage shutdown;
  shutdown.kind = HostMessage::Kind::kShutdown;
  for (const HostMessage& m : {init, exec, shell, input, resize, close, shutdown}) {
    auto parsed = parse_host_message(to_payload(m));
    ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
    EXPECT_EQ(*parsed, m);
  }
  EXPECT_EQ(to_payload(shutdown), "{\"type\":\"shutdown\"}");
  EXPECT_EQ(
      to_payload(exec),
      "{\"cols\":0,\"command\":[\"/bin/sh\",\"-c\",\"echo 'hi'\\n\"],\"container\":\"web\","
      "\"id\":18446744073709551615,\"rows\":0,\"stdin\":false,\"tty\":false,\"type\":\"exec\"}");
  EXPECT_EQ(to_payload(init).substr(0, 9), "{\"body\":\"");
  EXPECT_THAT(to_payload(init), HasSubstr("\"type\":\"init-data\",\"version\":2}"));
}

TEST(GuestProtocolHostMessage, InitDataBodyKeepsTheExactBytes) {
  // The agent hashes the body: it must come out byte for byte as the host's document.
  const std::string body =
      "{ \"version\" : 1,\n\t\"pod\": \"gr\xc3\xbc\xc3\x9f"
      "e\" }";
  HostMessage m;
  m.kind = HostMessage::Kind::kInitData;
  m.init_data = body;
  auto parsed = parse_host_message(to_payload(m));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->init_data, body);
}

TEST(GuestProtocolHostMessage, RefusesOtherProtocolVersionsAndOversizeBodies) {
  expect_host_refused("{\"type\":\"init-data\",\"version\":3,\"body\":\"{}\",\"extra\":1}",
                      "init-data.version: protocol version 3 is not supported");
  expect_host_refused("{\"type\":\"init-data\",\"body\":\"{}\"}", "init-data.version: required");
  expect_host_refused("{\"type\":\"init-data\",\"version\":\"1\",\"body\":\"{}\"}",
                      "init-data.version: must be an unsigned integer, got a string");
  json doc = {
      {"type", "init-data"}, {"version", 2}, {"body", std::string(kMaxInitDataBytes + 1, 'a')}};
  expect_host_refused(doc.dump(), "init-data.body: init-data longer than 65536 bytes");
  expect_host_refused("{\"type\":\"init-data\",\"version\":2,\"body\":{}}",
                      "init-data.body: must be a string, got an object");
}

TEST(GuestProtocolHostMessage, RefusesUnknownTypesAndMembers) {
  expect_host_refused("{\"type\":\"hello\",\"version\":2,\"agent\":\"x\"}",
                      "type: unknown host message type \"hello\"");
  expect_host_refused("{\"type\":\"reboot\"}", "unknown host message type \"reboot\"");
  expect_host_refused("{\"kind\":\"shutdown\"}", "message.type: required");
  expect_host_refused("{\"type\":5}", "message.type: must be a string");
  expect_host_refused("{\"type\":\"shutdown\",\"force\":true}",
                      "shutdown: unknown member \"force\"");
  expect_host_refused(
      "{\"type\":\"exec\",\"id\":1,\"container\":\"web\",\"command\":[\"ls\"],\"env\":[]}",
      "exec: unknown member \"env\"");
  expect_host_refused("{\"type\":\"init-data\",\"version\":2,\"body\":\"\",\"digest\":\"x\"}",
                      "init-data: unknown member \"digest\"");
}

TEST(GuestProtocolHostMessage, RefusesBadExec) {
  auto exec = [](json id, json container, json command) {
    return json{{"type", "exec"},     {"id", id},     {"container", container},
                {"command", command}, {"tty", false}, {"stdin", false},
                {"rows", 0},          {"cols", 0}}
        .dump();
  };
  expect_host_refused(exec(-1, "web", {"ls"}), "exec.id: must be an unsigned integer");
  expect_host_refused(exec(1.5, "web", {"ls"}), "exec.id: must be an unsigned integer");
  expect_host_refused(exec(1, "../web", {"ls"}), "exec.container: must match [a-z0-9][a-z0-9-]");
  expect_host_refused(exec(1, "web", json::array()), "exec.command: must not be empty");
  expect_host_refused(exec(1, "web", "ls"), "exec.command: must be an array, got a string");
  expect_host_refused(exec(1, "web", {"ls", 3}), "exec.command[1]: must be a string");
  expect_host_refused(exec(1, "web", {"ls", std::string("a\0b", 3)}),
                      "exec.command[1]: contains NUL");
  expect_host_refused(exec(1, "web", {"ls", std::string(4097, 'a')}),
                      "exec.command[1]: longer than 4096 bytes");
  json many = json::array();
  for (int i = 0; i < 257; ++i) many.push_back("a");
  expect_host_refused(exec(1, "web", many), "exec.command: more than 256 elements");
  // A huge id is a float to nlohmann, and refused.
  expect_host_refused(
      "{\"type\":\"exec\",\"id\":18446744073709551616,\"container\":\"w\",\"command\":[\"ls\"],"
      "\"tty\":false,\"stdin\":false,\"rows\":0,\"cols\":0}",
      "exec.id: must be an unsigned integer, got a non-integer number");
}

TEST(GuestProtocolHostMessage, RefusesBadExecControl) {
  expect_host_refused("{\"type\":\"exec-input\",\"id\":0,\"data\":\"\",\"eof\":true}",
                      "exec-input.id: must not be 0");
  expect_host_refused("{\"type\":\"exec-input\",\"id\":1,\"data\":\"aGk\",\"eof\":false}",
                      "exec-input.data: must be padded standard base64");
  json big = {{"type", "exec-input"},
              {"id", 1},
              {"eof", false},
              {"data", std::string(4 * ((kMaxOutputChunk + 3) / 3), 'A')}};
  expect_host_refused(big.dump(), "exec-input.data: more than 32768 bytes");
  expect_host_refused("{\"type\":\"exec-input\",\"id\":1,\"data\":\"\"}",
                      "exec-input.eof: required");
  expect_host_refused("{\"type\":\"exec-resize\",\"id\":1,\"rows\":4097,\"cols\":80}",
                      "exec-resize.rows: must be 0..4096, got 4097");
  expect_host_refused("{\"type\":\"exec-close\",\"id\":1,\"signal\":9}",
                      "exec-close: unknown member \"signal\"");
}

TEST(GuestProtocolHostMessage, RefusesHostileJson) {
  expect_host_refused("", "message: not valid JSON");
  expect_host_refused("{\"type\":\"shutdown\"} {}", "message: not valid JSON");
  expect_host_refused("\"shutdown\"", "message: must be a JSON object, got a string");
  expect_host_refused(std::string(20, '[') + std::string(20, ']'),
                      "message: JSON nested deeper than 16 levels");
  // 16 levels are within the limit (and then refused for shape), 17 are not.
  expect_host_refused(std::string(16, '[') + std::string(16, ']'),
                      "message: must be a JSON object, got an array");
  expect_host_refused(std::string(17, '[') + std::string(17, ']'),
                      "message: JSON nested deeper than 16 levels");
  // Closing brackets first cannot buy extra depth.
  expect_host_refused(std::string(100, ']') + std::string(100, '['), "message: not valid JSON");
  expect_host_refused("{\"type\":\"shutdown\",\"type\":\"exec\"}", "duplicate member \"type\"");
  // Also in a nested object, and with the second spelled with an escape.
  expect_host_refused(
      "{\"type\":\"exec\",\"id\":1,\"container\":\"w\",\"command\":[{\"a\":1,\"\\u0061\":2}]}",
      "duplicate member \"a\"");
  expect_host_refused(std::string(kMaxFramePayload + 1, ' '), "exceeds the limit of 1048576",
                      "guest.frame.too_large");
  // "\u0000" decodes to a NUL, which no type name contains.
  expect_host_refused("{\"type\":\"shutdown\\u0000\"}",
                      "unknown host message type \"shutdown\\x00\"");
}

// --- guest -> host ----------------------------------------------------------------------------

GuestMessage make(GuestMessage::Kind kind) {
  GuestMessage m;
  m.kind = kind;
  return m;
}

TEST(GuestProtocolGuestMessage, RoundTripsEachKind) {
  GuestMessage hello = make(GuestMessage::Kind::kHello);
  hello.agent = "confpod-agent 0.1";
  GuestMessage status = make(GuestMessage::Kind::kStatus);
  status.state = "init-data-verified";
  status.detail = "host_data matches\nline two";
  GuestMessage output = make(GuestMessage::Kind::kOutput);
  output.container = "web";
  output.stream = "stderr";
  output.data = std::string("\0\xff\x80 binary\n", 11);
  GuestMessage full = output;
  full.data = std::string(kMaxOutputChunk, '\xfe');
  GuestMessage exit = make(GuestMessage::Kind::kExit);
  exit.container = "web";
  exit.status = 137;
  exit.reason = "oom";
  GuestMessage exec_output = output;
  exec_output.id = 9;
  GuestMessage exec_exit = make(GuestMessage::Kind::kExecExit);
  exec_exit.id = 9;
  exec_exit.status = 130;
  GuestMessage pod_exit = make(GuestMessage::Kind::kPodExit);
  pod_exit.status = -9223372036854775807 - 1;
  GuestMessage error = make(GuestMessage::Kind::kError);
  error.code = "agent.init_data.mismatch";
  error.detail = "SHA-256 of init-data differs from HOST_DATA";
  GuestMessage response = make(GuestMessage::Kind::kResponse);
  response.id = 42;
  response.ok = true;
  for (const GuestMessage& m :
       {hello, status, output, full, exit, exec_output, exec_exit, pod_exit, error, response}) {
    auto parsed = parse_guest_message(to_payload(m));
    ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
    EXPECT_EQ(*parsed, m);
  }
  EXPECT_EQ(to_payload(hello),
            "{\"agent\":\"confpod-agent 0.1\",\"type\":\"hello\",\"version\":2}");
  GuestMessage hi = output;
  hi.data = "hi\n";
  EXPECT_EQ(to_payload(hi),
            "{\"container\":\"web\",\"data\":\"aGkK\",\"id\":0,\"stream\":\"stderr\",\"type\":"
            "\"output\"}");
  EXPECT_EQ(to_payload(exit),
            "{\"container\":\"web\",\"reason\":\"oom\",\"status\":137,\"type\":\"exit\"}");
  EXPECT_EQ(to_payload(response), "{\"detail\":\"\",\"id\":42,\"ok\":true,\"type\":\"response\"}");
}

TEST(GuestProtocolGuestMessage, HelloOfAnotherVersionIsReturnedForTheHostToRefuse) {
  auto r = parse_guest_message("{\"type\":\"hello\",\"version\":3,\"capabilities\":[1,2]}");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->kind, GuestMessage::Kind::kHello);
  EXPECT_EQ(r->version, 3u);
  EXPECT_EQ(r->agent, "");
  expect_guest_refused("{\"type\":\"hello\",\"version\":4294967296}",
                       "hello.version: out of the 32-bit range");
  expect_guest_refused("{\"type\":\"hello\",\"agent\":\"a\"}", "hello.version: required");
  expect_guest_refused("{\"type\":\"hello\",\"version\":2,\"agent\":\"a\",\"x\":1}",
                       "hello: unknown member \"x\"");
  expect_guest_refused("{\"type\":\"hello\",\"version\":2,\"agent\":\"\"}",
                       "hello.agent: must be 1 to 256 printable ASCII characters");
  expect_guest_refused("{\"type\":\"hello\",\"version\":2,\"agent\":\"a\\u001b[2J\"}",
                       "hello.agent: must be 1 to 256 printable ASCII characters");
}

TEST(GuestProtocolGuestMessage, RefusesBadReasonsAndExecExits) {
  expect_guest_refused("{\"type\":\"exit\",\"container\":\"web\",\"status\":137,\"reason\":\"x\"}",
                       "exit.reason: must be \"\" or oom, got \"x\"");
  expect_guest_refused("{\"type\":\"pod-exit\",\"status\":1}", "pod-exit.reason: required");
  expect_guest_refused("{\"type\":\"exec-exit\",\"id\":0,\"status\":1}",
                       "exec-exit.id: must not be 0");
}

TEST(GuestProtocolGuestMessage, RefusesOversizeOutput) {
  GuestMessage output = make(GuestMessage::Kind::kOutput);
  output.container = "web";
  output.stream = "stdout";
  output.data = std::string(kMaxOutputChunk + 1, 'x');
  expect_guest_refused(to_payload(output), "output.data: more than 32768 bytes");
  // Exactly at the encoded bound but one byte over once decoded.
  output.data = std::string(kMaxOutputChunk + 2, 'x');
  expect_guest_refused(to_payload(output), "output.data: more than 32768 bytes");
  output.data = std::string(kMaxOutputChunk + 3, 'x');
  expect_guest_refused(to_payload(output), "output.data: more than 32768 bytes");
}

TEST(GuestProtocolGuestMessage, RefusesBadBase64) {
  auto output = [](const std::string& data) {
    return json{
        {"type", "output"}, {"id", 0}, {"container", "web"}, {"stream", "stdout"}, {"data", data}}
        .dump();
  };
  for (const char* bad :
       {"aGk", "aGk=\n", " aGkK", "aGkK ", "a-_K", "a===", "====", "aG=K", "aGkK\r\n", "=aGk"}) {
    SCOPED_TRACE(bad);
    expect_guest_refused(output(bad), "output.data: must be padded standard base64");
  }
  EXPECT_TRUE(parse_guest_message(output("")).ok());
  EXPECT_EQ(parse_guest_message(output("aA=="))->data, "h");
}

TEST(GuestProtocolGuestMessage, RefusesBadMembers) {
  expect_guest_refused("{\"type\":\"status\",\"state\":\"Ready\",\"detail\":\"\"}",
                       "status.state: must match [a-z0-9-]{1,64}, got \"Ready\"");
  expect_guest_refused("{\"type\":\"status\",\"state\":\"ready\"}", "status.detail: required");
  expect_guest_refused(
      json{
          {"type", "status"}, {"state", "ready"}, {"detail", std::string(kMaxDetailBytes + 1, 'd')}}
          .dump(),
      "status.detail: longer than 8192 bytes");
  expect_guest_refused(
      "{\"type\":\"output\",\"id\":0,\"container\":\"web\",\"stream\":\"stdin\",\"data\":\"\"}",
      "output.stream: must be stdout or stderr, got \"stdin\"");
  expect_guest_refused(
      "{\"type\":\"output\",\"id\":0,\"container\":\"WEB\",\"stream\":\"stdout\",\"data\":\"\"}",
      "output.container: must match");
  expect_guest_refused("{\"type\":\"exit\",\"container\":\"web\",\"status\":\"0\"}",
                       "exit.status: must be an integer, got a string");
  expect_guest_refused("{\"type\":\"exit\",\"container\":\"web\",\"status\":9223372036854775808}",
                       "exit.status: out of the 64-bit signed range");
  expect_guest_refused("{\"type\":\"exit\",\"container\":\"web\",\"status\":1.0}",
                       "exit.status: must be an integer, got a non-integer number");
  expect_guest_refused("{\"type\":\"pod-exit\"}", "pod-exit.status: required");
  expect_guest_refused("{\"type\":\"pod-exit\",\"status\":0,\"container\":\"web\"}",
                       "pod-exit: unknown member \"container\"");
  expect_guest_refused("{\"type\":\"error\",\"code\":\"Agent Failed\",\"detail\":\"\"}",
                       "error.code: must match [a-z0-9._-]{1,128}");
  expect_guest_refused("{\"type\":\"response\",\"id\":1,\"ok\":1,\"detail\":\"\"}",
                       "response.ok: must be a boolean, got an unsigned integer");
  expect_guest_refused("{\"type\":\"exec\",\"id\":1,\"container\":\"w\",\"command\":[\"ls\"]}",
                       "type: unknown guest message type \"exec\"");
}

TEST(GuestProtocolGuestMessage, ToPayloadCutsLongDetailAtACharacterBoundary) {
  GuestMessage error = make(GuestMessage::Kind::kError);
  error.code = "agent.failed";
  // 'a' then 2-byte characters: the cut falls inside one and must back off.
  error.detail = "a";
  while (error.detail.size() < kMaxDetailBytes + 100) error.detail += "\xc3\xa9";
  auto parsed = parse_guest_message(to_payload(error));
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  EXPECT_EQ(parsed->detail.size(), kMaxDetailBytes - 1);
  EXPECT_EQ(parsed->detail, error.detail.substr(0, kMaxDetailBytes - 1));
  // Bytes JSON cannot carry are dropped, not thrown.
  error.detail = "bad \xff byte";
  EXPECT_EQ(parse_guest_message(to_payload(error))->detail, "bad  byte");
}

TEST(GuestProtocolConversation, ConversationOverOneStream) {
  // The order of docs/guest-protocol.md, through the frame layer.
  GuestMessage hello = make(GuestMessage::Kind::kHello);
  hello.agent = "confpod-agent test";
  GuestMessage verified = make(GuestMessage::Kind::kStatus);
  verified.state = "init-data-verified";
  GuestMessage out = make(GuestMessage::Kind::kOutput);
  out.container = "app";
  out.stream = "stdout";
  out.data = "hello\n";
  GuestMessage exit = make(GuestMessage::Kind::kExit);
  exit.container = "app";
  GuestMessage pod_exit = make(GuestMessage::Kind::kPodExit);
  std::string stream;
  for (const GuestMessage& m : {hello, verified, out, exit, pod_exit})
    stream += encode_frame(to_payload(m));
  FrameDecoder decoder;
  std::vector<GuestMessage> got;
  for (std::size_t i = 0; i < stream.size(); i += 7) {
    decoder.feed(std::string_view(stream).substr(i, 7));
    while (true) {
      auto next = decoder.next();
      ASSERT_TRUE(next.ok());
      if (!next->has_value()) break;
      auto m = parse_guest_message(**next);
      ASSERT_TRUE(m.ok()) << m.error().describe();
      got.push_back(*m);
    }
  }
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0], hello);
  EXPECT_EQ(got[2], out);
  EXPECT_EQ(got[4], pod_exit);
  EXPECT_TRUE(decoder.finish().ok());
}

}  // namespace
}  // namespace confpod::guest
