#include "guest/protocol/init_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace confpod::guest {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const std::string kDigest =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

InitData sample() {
  InitData d;
  d.pod = "demo";
  d.tee = "snp";
  d.kbs_url = "https://kbs.example:8080";
  d.network.interface = "eth0";
  d.network.mac = "02:cf:0a:59:00:02";
  d.network.address = "10.89.0.2/24";
  d.network.gateway = "10.89.0.1";
  d.network.address6 = "fd00:89::2/64";
  d.network.gateway6 = "fd00:89::1";
  d.network.dns = {"10.89.0.1", "fd00:89::1"};
  InitContainer web;
  web.name = "web";
  web.image = {kDigest, "image0"};
  web.command = {"/bin/sh", "-c", "echo \"hi\" \\ done"};
  web.env = {{"PATH", "/usr/bin:/bin"}, {"GREETING", "grüße"}};
  web.workdir = "/srv";
  InitContainer db;
  db.name = "db";
  db.image = {kDigest, "image1"};
  d.containers = {web, db};
  d.secrets = {{"default/db/password", "/run/secrets/db", ""}};
  d.allow_exec = true;
  return d;
}

// The canonical text of sample() as a JSON value, to edit one member at a time.
json sample_json() { return json::parse(to_json(sample())); }

// sample() with an init container first, confinement and limits on web, a secret variable.
InitData confined_sample() {
  InitData d = sample();
  InitContainer& web = d.containers[0];
  web.user = "app:app";
  web.read_only_rootfs = true;
  web.tmpfs = {"/tmp", "/run/app"};
  web.capabilities = {"CAP_CHOWN", "CAP_NET_BIND_SERVICE"};
  web.cpu_millis = 500;
  web.memory_mib = 128;
  InitContainer migrate;
  migrate.name = "migrate";
  migrate.image = {kDigest, "image2"};
  migrate.init = true;
  migrate.seccomp = "unconfined";
  d.containers.insert(d.containers.begin(), migrate);
  d.secrets.push_back({"default/db/token", "", "DB_TOKEN"});
  return d;
}

// Expects parse_init_data(doc) to fail with `code` and a message containing `needle`.
void expect_refused(const json& doc, const std::string& needle,
                    const std::string& code = "initdata.invalid") {
  auto r = parse_init_data(doc.dump());
  ASSERT_FALSE(r.ok()) << doc.dump();
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_THAT(r.error().message, HasSubstr(needle));
}

void expect_text_refused(const std::string& text, const std::string& needle,
                         const std::string& code = "initdata.invalid") {
  auto r = parse_init_data(text);
  ASSERT_FALSE(r.ok()) << text.substr(0, 200);
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_THAT(r.error().message, HasSubstr(needle));
}

TEST(GuestProtocolInitData, RoundTrips) {
  const InitData d = sample();
  auto parsed = parse_init_data(to_json(d));
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  EXPECT_EQ(*parsed, d);
  EXPECT_EQ(to_json(*parsed), to_json(d));
  EXPECT_TRUE(validate_init_data(d).ok());
}

TEST(GuestProtocolInitData, CanonicalFormIsCompactSortedAndComplete) {
  InitData d;
  d.pod = "p";
  d.tee = "none";
  InitContainer c;
  c.name = "app";
  c.image = {kDigest, "image0"};
  d.containers = {c};
  EXPECT_EQ(to_json(d),
            "{\"allow_exec\":false,\"containers\":[{\"capabilities\":[],\"command\":[],"
            "\"cpu_millis\":0,\"env\":{},\"image\":{\"digest\":\"" +
                kDigest +
                "\",\"disk\":\"image0\"},\"init\":false,\"memory_mib\":0,\"name\":\"app\","
                "\"read_only_rootfs\":false,\"seccomp\":\"default\",\"tmpfs\":[],\"user\":\"\","
                "\"workdir\":\"/\"}],\"kbs_url\":\"\","
                "\"network\":{\"address\":\"\",\"address6\":\"\",\"dns\":[],\"gateway\":\"\","
                "\"gateway6\":\"\",\"interface\":\"eth0\",\"mac\":\"\"},\"pod\":"
                "\"p\",\"secrets\":[],\"tee\":\"none\",\"version\":3}");
}

// The version-3 container members at their defaults, in an order of their own.
const std::string kDefaultsV3 =
    ", \"user\": \"\", \"tmpfs\": [], \"seccomp\": \"default\", \"read_only_rootfs\": false, "
    "\"memory_mib\": 0, \"init\": false, \"cpu_millis\": 0, \"capabilities\": []";

TEST(GuestProtocolInitData, CanonicalBytesDoNotDependOnInputForm) {
  // The same document with members in another order and with whitespace.
  const std::string reordered =
      "{ \"version\": 3, \"tee\": \"snp\", \"secrets\": [ {\"resource\": \"default/db/password\", "
      "\"env\": \"\", \"path\": \"/run/secrets/db\"} ], \"pod\": \"demo\", \"network\": "
      "{\"interface\": "
      "\"eth0\", \"gateway\": \"10.89.0.1\", \"address\": \"10.89.0.2/24\", \"mac\": "
      "\"02:cf:0a:59:00:02\", \"dns\": [\"10.89.0.1\", \"fd00:89::1\"], \"gateway6\": "
      "\"fd00:89::1\", \"address6\": \"fd00:89::2/64\"}, \"kbs_url\": "
      "\"https://kbs.example:8080\", \"containers\": [ {\"workdir\": \"/srv\", \"name\": "
      "\"web\", \"image\": {\"disk\": \"image0\", \"digest\": \"" +
      kDigest +
      "\"}, \"env\": {\"PATH\": \"/usr/bin:/bin\", \"GREETING\": \"gr\\u00fc\\u00dfe\"}, "
      "\"command\": [\"/bin/sh\", \"-c\", \"echo \\\"hi\\\" \\\\ done\"]" +
      kDefaultsV3 +
      "}, {\"workdir\": \"/\", "
      "\"name\": \"db\", \"image\": {\"disk\": \"image1\", \"digest\": \"" +
      kDigest + "\"}, \"env\": {}, \"command\": []" + kDefaultsV3 + "} ], \"allow_exec\": true }\n";
  auto parsed = parse_init_data(reordered);
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  EXPECT_EQ(*parsed, sample());
  EXPECT_EQ(to_json(*parsed), to_json(sample()));
}

TEST(GuestProtocolInitData, RefusesOversizeBeforeParsing) {
  // Not even JSON: the size alone decides.
  expect_text_refused(std::string(kMaxInitDataBytes + 1, '{'), "exceeds the limit of 65536",
                      "initdata.too_large");
}

TEST(GuestProtocolInitData, RefusesHostileJson) {
  expect_text_refused("", "not valid JSON");
  expect_text_refused("{\"version\":1", "not valid JSON");
  expect_text_refused(to_json(sample()) + "x", "not valid JSON");
  expect_text_refused("[1]", "must be a JSON object, got an array");
  expect_text_refused(std::string(100, '[') + std::string(100, ']'), "nested deeper than 16");
  // Brackets inside strings are not nesting.
  json doc = sample_json();
  doc["containers"][0]["command"][0] = std::string(200, '[');
  EXPECT_TRUE(parse_init_data(doc.dump()).ok());
  // Huge numbers become floats in nlohmann and are refused as such.
  doc = sample_json();
  doc["version"] = 1;
  std::string text = doc.dump();
  text.replace(text.find("\"version\":1"), 11, "\"version\":100000000000000000000000");
  expect_text_refused(text, "version: must be an unsigned integer, got a non-integer number");
  // Out of double range: nlohmann refuses the whole text.
  expect_text_refused("{\"version\":1e400}", "init-data: not valid JSON");
  expect_text_refused("{\"version\":-1}", "version: must be an unsigned integer");
  expect_text_refused("{\"version\":1.0}", "version: must be an unsigned integer");
  // Many shallow values: the size cap (64 KiB, checked first) stops them before the value
  // count could (messages_test covers the count on 1 MiB frames).
  std::string many = "[";
  for (int i = 0; i < 40000; ++i) many += "0,";
  many += "0]";
  expect_text_refused(many, "exceeds the limit of 65536", "initdata.too_large");
  // Invalid UTF-8 inside a string.
  text = to_json(sample());
  text.replace(text.find("grüße"), 5, "gr\xff");
  expect_text_refused(text, "not valid JSON");
}

TEST(GuestProtocolInitData, RefusesDuplicateMembers) {
  // nlohmann would keep the last one; two readers could then disagree on the document.
  std::string text = to_json(sample());
  text.insert(1, "\"pod\":\"evil\",");
  expect_text_refused(text, "duplicate member \"pod\"");
  text = to_json(sample());
  text.replace(text.find("\"disk\":\"image0\""), 15, "\"disk\":\"image0\",\"disk\":\"image9\"");
  expect_text_refused(text, "duplicate member \"disk\"");
  // The same name in different objects is fine.
  EXPECT_TRUE(parse_init_data(to_json(sample())).ok());
}

TEST(GuestProtocolInitData, RefusesOtherVersionsFirst) {
  json doc = sample_json();
  doc["version"] = 4;
  doc["new_member"] = true;  // a version-4 member does not hide the version
  expect_refused(doc, "version: must be 3, got 4");
  doc["version"] = 2;  // version 2 had no container confinement or limits
  expect_refused(doc, "version: must be 3, got 2");
  doc.erase("version");
  expect_refused(doc, "version: required");
}

TEST(GuestProtocolInitData, RefusesUnknownAndMissingMembers) {
  json doc = sample_json();
  doc["allow_everything"] = true;
  expect_refused(doc, "unknown member \"allow_everything\"");
  doc = sample_json();
  doc["containers"][1]["privileged"] = true;
  expect_refused(doc, "containers[1]: unknown member \"privileged\"");
  doc = sample_json();
  doc["containers"][0]["image"]["path"] = "/x";
  expect_refused(doc, "containers[0].image: unknown member \"path\"");
  doc = sample_json();
  doc["network"]["mtu"] = 1500;
  expect_refused(doc, "network: unknown member \"mtu\"");
  doc = sample_json();
  doc["secrets"][0]["mode"] = "0644";
  expect_refused(doc, "secrets[0]: unknown member \"mode\"");

  // Every member is required: the canonical form writes them all.
  for (const char* name :
       {"allow_exec", "containers", "kbs_url", "network", "pod", "secrets", "tee"}) {
    doc = sample_json();
    doc.erase(name);
    expect_refused(doc, std::string(name) + ": required");
  }
  for (const char* name : {"command", "env", "image", "name", "workdir"}) {
    doc = sample_json();
    doc["containers"][1].erase(name);
    expect_refused(doc, std::string("containers[1].") + name + ": required");
  }
  doc = sample_json();
  doc["containers"][0]["image"].erase("disk");
  expect_refused(doc, "containers[0].image.disk: required");
  doc = sample_json();
  doc["network"].erase("gateway");
  expect_refused(doc, "network.gateway: required");
  doc = sample_json();
  doc["secrets"][0].erase("resource");
  expect_refused(doc, "secrets[0].resource: required");
}

TEST(GuestProtocolInitData, RefusesWrongTypes) {
  json doc = sample_json();
  doc["allow_exec"] = "true";
  expect_refused(doc, "allow_exec: must be a boolean, got a string");
  doc = sample_json();
  doc["pod"] = 7;
  expect_refused(doc, "pod: must be a string, got an unsigned integer");
  doc = sample_json();
  doc["containers"] = json::object();
  expect_refused(doc, "containers: must be an array, got an object");
  doc = sample_json();
  doc["containers"][0] = "web";
  expect_refused(doc, "containers[0]: must be an object, got a string");
  doc = sample_json();
  doc["containers"][0]["command"][2] = nullptr;
  expect_refused(doc, "containers[0].command[2]: must be a string, got null");
  doc = sample_json();
  doc["containers"][0]["env"]["PATH"] = 1.5;
  expect_refused(doc, "containers[0].env.\"PATH\": must be a string, got a non-integer number");
  doc = sample_json();
  doc["containers"][0]["env"] = json::array();
  expect_refused(doc, "containers[0].env: must be an object, got an array");
  doc = sample_json();
  doc["containers"][0]["image"] = kDigest;
  expect_refused(doc, "containers[0].image: must be an object, got a string");
  doc = sample_json();
  doc["network"] = nullptr;
  expect_refused(doc, "network: must be an object, got null");
  doc = sample_json();
  doc["secrets"] = "default/db/password";
  expect_refused(doc, "secrets: must be an array, got a string");
}

TEST(GuestProtocolInitData, RefusesBadValues) {
  struct Case {
    const char* pointer;  // JSON pointer of the member to replace
    json value;
    const char* message;
  };
  const Case cases[] = {
      {"/pod", "Demo", "pod: must match [a-z0-9][a-z0-9-]{0,62}"},
      {"/pod", "-demo", "pod: must match"},
      {"/pod", "", "pod: must match"},
      {"/pod", std::string(64, 'a'), "pod: must match"},
      {"/tee", "sev", "tee: must be snp, tdx or none, got \"sev\""},
      {"/kbs_url", "ftp://kbs", "kbs_url: must start with http:// or https://"},
      {"/kbs_url", "http://", "kbs_url: has no host"},
      {"/kbs_url", "http://a b", "kbs_url: contains a space"},
      {"/kbs_url", "http://kbs\n", "kbs_url: contains a control character"},
      {"/network/interface", "", "network.interface: must match [A-Za-z0-9_-]{1,15}"},
      {"/network/interface", "../eth0", "network.interface: must match"},
      {"/network/interface", std::string(16, 'e'), "network.interface: must match"},
      {"/network/address", "10.0.2.15", "network.address: must be a.b.c.d/len"},
      {"/network/address", "10.0.2.256/24", "network.address: must be a.b.c.d/len"},
      {"/network/address", "10.0.2.15/33", "network.address: must be a.b.c.d/len"},
      {"/network/address", "010.0.2.15/24", "network.address: must be a.b.c.d/len"},
      {"/network/address", "10.0.2/24", "network.address: must be a.b.c.d/len"},
      {"/network/gateway", "10.0.2.2/24", "network.gateway: must be a.b.c.d"},
      {"/network/gateway", "gateway", "network.gateway: must be a.b.c.d"},
      {"/network/mac", "02:CF:0a:59:00:02", "network.mac: must be xx:xx:xx:xx:xx:xx"},
      {"/network/mac", "02:cf:0a:59:00", "network.mac: must be xx:xx:xx:xx:xx:xx"},
      {"/network/address6", "fd00:89::2", "network.address6: must be an IPv6 address/len"},
      {"/network/address6", "10.89.0.2/24", "network.address6: must be an IPv6 address/len"},
      {"/network/gateway6", "fd00:89::1/64", "network.gateway6: must be an IPv6 address"},
      {"/network/dns/0", "resolver.local", "network.dns[0]: must be an IPv4 or IPv6 address"},
      {"/network/dns", json::array({"1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"}),
       "network.dns: more than 3 elements"},
      {"/containers", json::array(), "containers: at least one container is required"},
      {"/containers/1/name", "Web", "containers[1].name: must match [a-z0-9][a-z0-9-]{0,62}"},
      {"/containers/1/name", "web", "containers[1].name: duplicate container name \"web\""},
      {"/containers/0/image/digest", "sha256:ABCDEF",
       "containers[0].image.digest: must be sha256:<64 hex digits>"},
      {"/containers/0/image/digest",
       "sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
       "containers[0].image.digest: must be sha256:<64 hex digits>"},
      {"/containers/0/image/digest",
       "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
       "containers[0].image.digest: must be sha256:<64 hex digits>"},
      {"/containers/0/image/disk", "image 0",
       "containers[0].image.disk: must match [A-Za-z0-9_-]{1,20}"},
      {"/containers/0/image/disk", std::string(21, 'd'), "containers[0].image.disk: must match"},
      {"/containers/0/image/disk", "", "containers[0].image.disk: must match"},
      {"/containers/0/command/1", std::string("a\0b", 3),
       "containers[0].command[1]: contains a control character"},
      {"/containers/0/command/1", std::string(4097, 'a'),
       "containers[0].command[1]: longer than 4096 bytes"},
      {"/containers/0/env/PATH", "a\nb", "containers[0].env.PATH: contains a control character"},
      {"/containers/0/env/1BAD", "x", "containers[0].env: variable name \"1BAD\" must match"},
      {"/containers/0/env/BAD-NAME", "x", "containers[0].env: variable name \"BAD-NAME\""},
      {"/containers/0/workdir", "srv", "containers[0].workdir: must be an absolute path"},
      {"/containers/0/workdir", "/srv/../etc",
       "containers[0].workdir: must be normalized (no . or .. segments)"},
      {"/containers/0/workdir", "/srv/", "containers[0].workdir: must not end in /"},
      {"/secrets/0/path", "/", "secrets[0].path: must not be /"},
      {"/secrets/0/path", "/run/../etc/shadow", "secrets[0].path: must be normalized"},
      {"/secrets/0/path", "/run//x", "secrets[0].path: must not contain //"},
      {"/secrets/0/path", "run/x", "secrets[0].path: must be an absolute path"},
      {"/secrets/0/path", std::string("/run/x\0y", 8),
       "secrets[0].path: contains a control character"},
      {"/secrets/0/resource", "default/db", "secrets[0].resource: must be repository/type/tag"},
      {"/secrets/0/resource", "default/../password", "secrets[0].resource: must be"},
      {"/secrets/0/resource", "default/db/pass word", "secrets[0].resource: must be"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.pointer);
    json doc = sample_json();
    doc[json::json_pointer(c.pointer)] = c.value;
    expect_refused(doc, c.message);
  }
}

TEST(GuestProtocolInitData, RefusesGatewayWithoutAddress) {
  json doc = sample_json();
  doc["network"]["address"] = "";
  expect_refused(doc, "network.gateway: needs network.address");
  doc["network"]["gateway"] = "";
  EXPECT_TRUE(parse_init_data(doc.dump()).ok());  // no network at all
}

TEST(GuestProtocolInitData, RefusesDuplicateSecretPaths) {
  json doc = sample_json();
  doc["secrets"].push_back(
      {{"env", ""}, {"path", "/run/secrets/db"}, {"resource", "default/db/other"}});
  expect_refused(doc, "secrets[1].path: duplicate secret path \"/run/secrets/db\"");
}

TEST(GuestProtocolInitData, RefusesOverCounts) {
  json doc = sample_json();
  for (int i = 0; i < 17; ++i) doc["containers"].push_back(doc["containers"][0]);
  expect_refused(doc, "containers: more than 16 elements");

  doc = sample_json();
  for (int i = 0; i < 65; ++i)
    doc["secrets"].push_back({{"path", "/s/" + std::to_string(i)}, {"resource", "a/b/c"}});
  expect_refused(doc, "secrets: more than 64 elements");

  doc = sample_json();
  doc["containers"][0]["command"] = json::array();
  for (int i = 0; i < 257; ++i) doc["containers"][0]["command"].push_back("x");
  expect_refused(doc, "containers[0].command: more than 256 elements");

  doc = sample_json();
  for (int i = 0; i < 257; ++i) doc["containers"][0]["env"]["V" + std::to_string(i)] = "x";
  expect_refused(doc, "containers[0].env: more than 256 members");

  // At the limits it parses.
  doc = sample_json();
  doc["containers"][0]["command"] = json::array();
  for (int i = 0; i < 256; ++i) doc["containers"][0]["command"].push_back(std::string(8, 'x'));
  doc["containers"][0]["command"][0] = std::string(4096, 'y');
  EXPECT_TRUE(parse_init_data(doc.dump()).ok());
}

TEST(GuestProtocolInitData, ValidateNamesTheSameMembers) {
  InitData d = sample();
  d.containers[1].image.digest = "latest";
  Status s = validate_init_data(d);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "initdata.invalid");
  EXPECT_EQ(s.error().message, "containers[1].image.digest: must be sha256:<64 hex digits>");

  d = sample();
  d.version = 2;
  EXPECT_FALSE(validate_init_data(d).ok());

  // Not UTF-8: to_json cannot carry it, so validate refuses what would not round-trip.
  d = sample();
  d.containers[0].env["GREETING"] = "\xc3";
  s = validate_init_data(d);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "containers[0].env.GREETING: is not valid UTF-8");
  EXPECT_FALSE(parse_init_data(to_json(d)).ok() && *parse_init_data(to_json(d)) == d);
}

TEST(GuestProtocolInitData, ErrorsQuoteHostileValuesSafely) {
  json doc = sample_json();
  doc["tee"] = std::string("\x01\"") + std::string(200, 'x');
  auto r = parse_init_data(doc.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("got \"\\x01\\\"xxx"));
  EXPECT_LT(r.error().message.size(), 200u);
}

TEST(InitDataContainers, ConfinementAndLimitsRoundTripAndAreChecked) {
  auto parsed = parse_init_data(to_json(confined_sample()));
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  EXPECT_EQ(*parsed, confined_sample());
  const auto sample_json = [] { return json::parse(to_json(confined_sample())); };

  json doc = sample_json();
  doc["containers"][1]["capabilities"] = {"CAP_NET_BIND_SERVICE", "CAP_CHOWN"};
  expect_refused(doc, "containers[1].capabilities: must be sorted and unique");
  doc = sample_json();
  doc["containers"][1]["capabilities"] = {"CAP_TIME_TRAVEL"};
  expect_refused(doc, "containers[1].capabilities[0]: unknown capability");
  doc = sample_json();
  doc["containers"][1]["seccomp"] = "off";
  expect_refused(doc, "containers[1].seccomp: must be default or unconfined");
  doc = sample_json();
  doc["containers"][1]["tmpfs"] = {"/tmp", "relative"};
  expect_refused(doc, "containers[1].tmpfs[1]");
  doc = sample_json();
  doc["containers"][1]["user"] = "root;rm";
  expect_refused(doc, "containers[1].user");
  doc = sample_json();
  doc["containers"][1]["memory_mib"] = 1u << 30;
  expect_refused(doc, "containers[1].memory_mib: must be at most");
  doc = sample_json();
  doc["containers"][1]["cpu_millis"] = -1;
  expect_refused(doc, "containers[1].cpu_millis");
  // An init container after a regular one, or only init containers.
  doc = sample_json();
  doc["containers"][2]["init"] = true;
  expect_refused(doc, "containers[2].init: init containers come before the others");
  doc = sample_json();
  for (auto& c : doc["containers"]) c["init"] = true;
  expect_refused(doc, "at least one container that is not an init container");
}

TEST(InitDataSecrets, AFileOrAVariableNeverBoth) {
  const auto sample_json = [] { return json::parse(to_json(confined_sample())); };
  json doc = sample_json();
  doc["secrets"][1]["path"] = "/run/secrets/token";
  expect_refused(doc, "secrets[1]: needs exactly one of path and env");
  doc = sample_json();
  doc["secrets"][1]["env"] = "";
  expect_refused(doc, "secrets[1]: needs exactly one of path and env");
  doc = sample_json();
  doc["secrets"][1]["env"] = "1BAD";
  expect_refused(doc, "secrets[1].env: must match");
  doc = sample_json();
  doc["secrets"][0]["path"] = "";
  doc["secrets"][0]["env"] = "DB_TOKEN";
  expect_refused(doc, "duplicate secret variable");
}

}  // namespace
}  // namespace confpod::guest
