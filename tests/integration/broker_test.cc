// The KBS admin interface org.confpod1.Broker end to end: confpodctl secret put/ls/rm and
// busctl against the real confpodd on a private bus. Resources are stored in the daemon's
// SQLite file (mode 0600), survive kill -9, are refused to callers outside root/confpod, and
// their values never reach the daemon's log.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>

#include <algorithm>
#include <memory>
#include <sstream>

#include "attest/base/bytes.h"
#include "tests/support/bus.h"
#include "tests/support/fixtures.h"
#include "tests/support/process.h"

namespace confpod {
namespace {

using testing::DaemonProcess;
using testing::PrivateBus;
using testing::ProcessResult;
using testing::run_process;
using testing::TempDir;

// Distinctive bytes that must never show up in a log.
constexpr const char* kSecretValue = "s3cr3t-value-7f2c9a41";

class Broker : public ::testing::Test {
 protected:
  ProcessResult ctl(const std::vector<std::string>& args, bool as_nobody = false) {
    std::vector<std::string> argv;
    if (as_nobody)
      argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
    argv.insert(argv.end(), {CONFPODCTL_PATH, "--address", bus_.address()});
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  }

  std::vector<std::string> listed() {
    auto r = ctl({"secret", "ls"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(line);
    return out;
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "confpodd log:\n" << daemon_.log();
  }

  PrivateBus bus_;
  DaemonProcess daemon_{bus_};
  TempDir files_;
};

TEST_F(Broker, PutListRemoveAndKillNine) {
  std::string value_file = files_.write("db-key", kSecretValue);
  auto put = ctl({"secret", "put", "payroll/keys/db", value_file});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  ASSERT_EQ(ctl({"secret", "put", "payroll/keys/api", value_file}).exit_code, 0);
  auto paths = listed();
  EXPECT_EQ(paths, (std::vector<std::string>{"payroll/keys/api", "payroll/keys/db"}));

  // The daemon's database holds them, owner-only.
  struct stat st {};
  ASSERT_EQ(::stat((daemon_.state_dir() + "/confpod.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  daemon_.kill9();
  daemon_.restart();
  EXPECT_EQ(listed(), paths) << "resources lost across kill -9";

  auto rm = ctl({"secret", "rm", "payroll/keys/api"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(listed(), (std::vector<std::string>{"payroll/keys/db"}));

  auto missing = ctl({"secret", "rm", "payroll/keys/api"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("org.confpod1.Error.NoSuchResource"), std::string::npos)
      << missing.err;

  EXPECT_EQ(daemon_.log().find(kSecretValue), std::string::npos) << "a value reached the log";
}

TEST_F(Broker, InvalidPathsAndOversizeValuesAreRefused) {
  std::string value_file = files_.write("v", "x");
  for (std::string bad : {"no-slashes", "a/b", "a/b/c/d", "a/../c", "a/b/c d", "/a/b/c"}) {
    auto r = ctl({"secret", "put", bad, value_file});
    EXPECT_EQ(r.exit_code, 1) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("org.confpod1.Error.InvalidResource"), std::string::npos)
        << bad << ": " << r.err;
  }
  // Over the limit through the bus itself (sd-bus, bypassing the CLI's own size check).
  testing::BusPtr conn = testing::open_bus(bus_);
  sd_bus_message* raw = nullptr;
  ASSERT_GE(sd_bus_message_new_method_call(conn.get(), &raw, "org.confpod1", "/org/confpod1",
                                           "org.confpod1.Broker", "SetResource"),
            0);
  std::unique_ptr<sd_bus_message, decltype(&sd_bus_message_unref)> call(raw, &sd_bus_message_unref);
  std::string big((1u << 20) + 1, '7');
  ASSERT_GE(sd_bus_message_append(raw, "s", "big/value/x"), 0);
  ASSERT_GE(sd_bus_message_append_array(raw, 'y', big.data(), big.size()), 0);
  sd_bus_error error = SD_BUS_ERROR_NULL;
  int r = sd_bus_call(conn.get(), raw, 0, &error, nullptr);
  EXPECT_LT(r, 0);
  EXPECT_STREQ(error.name, "org.confpod1.Error.InvalidResource");
  sd_bus_error_free(&error);
  EXPECT_TRUE(listed().empty());
}

TEST_F(Broker, OutsidersGetAccessDeniedOnEveryMethod) {
  std::string value_file = files_.write("v", kSecretValue);
  ::chmod(files_.path().c_str(), 0755);
  ::chmod(value_file.c_str(), 0644);
  ASSERT_EQ(ctl({"secret", "put", "team/keys/one", value_file}).exit_code, 0);
  for (auto args : std::vector<std::vector<std::string>>{
           {"secret", "ls"},
           {"secret", "put", "team/keys/two", value_file},
           {"secret", "rm", "team/keys/one"},
       }) {
    auto r = ctl(args, /*as_nobody=*/true);
    EXPECT_EQ(r.exit_code, 1) << args[1] << ": " << r.err;
    EXPECT_NE(r.err.find("org.freedesktop.DBus.Error.AccessDenied"), std::string::npos)
        << args[1] << ": " << r.err;
  }
  auto refs = testing::busctl(
      bus_,
      {"call", "org.confpod1", "/org/confpod1", "org.confpod1.Broker", "SetReferenceValues",
       "sa{sv}", "p", "1", "measurement", "s", std::string(96, 'a')},
      /*as_nobody=*/true);
  EXPECT_NE(refs.exit_code, 0);
  EXPECT_EQ(listed(), (std::vector<std::string>{"team/keys/one"}));
}

// confpodctl collateral against the real daemon: files as saved from AMD's KDS, checked
// against the pinned roots at import, kept across kill -9, removable; forged, expired and
// unknown files refused with InvalidCollateral; outsiders refused.
TEST_F(Broker, CollateralImportListRemove) {
  // A directory as an operator brings it from a machine with internet.
  TempDir kds;
  for (const char* f : {"ms_genoa_vcek.pem", "ask_ark_milan_vlek.pem", "trustee_genoa_vcek.der"}) {
    kds.write(f, testing::read_fixture_text(std::string("snp/") + f));
  }
  auto imported = ctl({"collateral", "import", kds.path()});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_NE(imported.out.find("added  "), std::string::npos) << imported.out;
  EXPECT_NE(imported.out.find("snp-vcek  VCEK genoa"), std::string::npos) << imported.out;
  EXPECT_NE(imported.out.find("snp-asvk  ASVK milan"), std::string::npos) << imported.out;
  EXPECT_NE(imported.out.find("snp-ark  ARK milan"), std::string::npos) << imported.out;
  // Again: nothing new.
  auto again = ctl({"collateral", "import", kds.path() + "/ms_genoa_vcek.pem"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(again.out.starts_with("present  ")) << again.out;

  auto ls = ctl({"collateral", "ls"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_TRUE(ls.out.starts_with("ID ")) << ls.out;
  EXPECT_EQ(std::count(ls.out.begin(), ls.out.end(), '\n'), 5) << ls.out;  // header + 4
  EXPECT_NE(ls.out.find("2033-02-05"), std::string::npos) << ls.out;       // the VCEK's notAfter

  // Forged (one bit of the signature), expired (TDX collateral of 2025), not collateral.
  Bytes forged = testing::read_fixture("snp/trustee_genoa_vcek.der");
  forged[forged.size() - 9] ^= 0x04;
  const std::string forged_path =
      files_.write("forged.der", std::string(forged.begin(), forged.end()));
  auto refused = ctl({"collateral", "import", forged_path});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("org.confpod1.Error.InvalidCollateral: forged.der: VCEK genoa"),
            std::string::npos)
      << refused.err;
  auto expired =
      ctl({"collateral", "import", testing::fixture_path("tdx/dcapqvl_collateral_v4.json")});
  EXPECT_EQ(expired.exit_code, 1);
  EXPECT_NE(expired.err.find("expired on 2025-"), std::string::npos) << expired.err;
  auto junk = ctl({"collateral", "import", files_.write("notes.txt", "hello")});
  EXPECT_NE(junk.err.find("notes.txt: neither PEM"), std::string::npos) << junk.err;

  daemon_.kill9();
  daemon_.restart();
  auto after = ctl({"collateral", "ls"});
  EXPECT_EQ(after.out, ls.out) << "collateral lost across kill -9 (or a refused file got in)";

  // rm by a prefix of the id ls shows.
  const std::string first_id = after.out.substr(after.out.find('\n') + 1, 16);
  auto rm = ctl({"collateral", "rm", first_id.substr(0, 8)});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(rm.out, first_id + "\n");
  EXPECT_EQ(ctl({"collateral", "ls"}).out.find(first_id), std::string::npos);
  auto missing = ctl({"collateral", "rm", first_id});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("org.confpod1.Error.NoSuchCollateral"), std::string::npos)
      << missing.err;

  ::chmod(kds.path().c_str(), 0755);
  for (auto args : std::vector<std::vector<std::string>>{{"collateral", "ls"},
                                                         {"collateral", "rm", first_id},
                                                         {"collateral", "import", kds.path()}}) {
    auto r = ctl(args, /*as_nobody=*/true);
    EXPECT_EQ(r.exit_code, 1) << args[1] << ": " << r.err;
    EXPECT_NE(r.err.find("org.freedesktop.DBus.Error.AccessDenied"), std::string::npos)
        << args[1] << ": " << r.err;
  }
}

}  // namespace
}  // namespace confpod
