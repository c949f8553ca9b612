#include "daemon/ctl/format.h"

#include <gtest/gtest.h>

namespace confpod::ctl {
namespace {

TEST(TeeDisplay, NoneIsMarkedInsecure) {
  EXPECT_EQ(tee_display("none"), "none (INSECURE)");
  EXPECT_EQ(tee_display("snp"), "snp");
  EXPECT_EQ(tee_display("tdx"), "tdx");
}

TEST(PsTable, HeaderOnlyWhenNoPods) { EXPECT_EQ(format_ps_table({}), "NAME  STATE  TEE\n"); }

TEST(PsTable, ColumnsAlignToTheWidestValue) {
  std::vector<PodSummary> pods = {
      {"web", "running", "snp", "/org/confpod1/pod/web"},
      {"payroll-db", "created", "tdx", "/org/confpod1/pod/payroll_2ddb"},
      {"dev", "exited", "none", "/org/confpod1/pod/dev"},
  };
  EXPECT_EQ(format_ps_table(pods),
            "NAME        STATE    TEE\n"
            "web         running  snp\n"
            "payroll-db  created  tdx\n"
            "dev         exited   none (INSECURE)\n");
}

TEST(PsTable, ControlCharactersCannotForgeLines) {
  std::vector<PodSummary> pods = {{"a\nb\x1b[2J", "running", "snp\r", "/p"}};
  std::string table = format_ps_table(pods);
  EXPECT_EQ(table,
            "NAME     STATE    TEE\n"
            "a?b?[2J  running  snp?\n");
}

TEST(PsJson, ArrayOfObjectsWithInsecureFlag) {
  std::vector<PodSummary> pods = {
      {"web", "running", "snp", "/org/confpod1/pod/web"},
      {"dev", "created", "none", "/org/confpod1/pod/dev"},
  };
  nlohmann::json j = ps_json(pods);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0], nlohmann::json({{"name", "web"},
                                  {"state", "running"},
                                  {"tee", "snp"},
                                  {"insecure", false},
                                  {"path", "/org/confpod1/pod/web"}}));
  EXPECT_EQ(j[1]["tee"], "none");
  EXPECT_EQ(j[1]["insecure"], true);
  EXPECT_TRUE(ps_json({}).is_array());
  EXPECT_TRUE(ps_json({}).empty());
}

TEST(InspectJson, KeepsPropertiesAndTheirTypesAddsPathAndInsecure) {
  nlohmann::json props = {{"Name", "dev"},
                          {"State", "running"},
                          {"Tee", "none"},
                          {"CreatedAt", std::uint64_t{1700000000000000}},
                          {"StartedAt", std::uint64_t{0}},
                          {"ExitStatus", std::int64_t{-1}},
                          {"Measurement", ""}};
  nlohmann::json j = inspect_json("/org/confpod1/pod/dev", props);
  EXPECT_EQ(j["Path"], "/org/confpod1/pod/dev");
  EXPECT_EQ(j["Insecure"], true);
  EXPECT_EQ(j["Name"], "dev");
  EXPECT_TRUE(j["CreatedAt"].is_number_unsigned());
  EXPECT_EQ(j["CreatedAt"].get<std::uint64_t>(), 1700000000000000u);
  EXPECT_TRUE(j["ExitStatus"].is_number_integer());
  EXPECT_EQ(j["ExitStatus"].get<std::int64_t>(), -1);
  EXPECT_EQ(j.size(), props.size() + 2);

  props["Tee"] = "snp";
  EXPECT_EQ(inspect_json("/p", props)["Insecure"], false);
}

TEST(OneLine, JoinsLinesAndDropsControlCharacters) {
  EXPECT_EQ(one_line("no pod named \"x\""), "no pod named \"x\"");
  EXPECT_EQ(one_line("qemu failed:\n  line one\n\nline two\n"), "qemu failed:; line one; line two");
  EXPECT_EQ(one_line("a\r\nb"), "a; b");
  EXPECT_EQ(one_line("tab\there\x1b[31m"), "tab here?[31m");
  EXPECT_EQ(one_line(""), "");
  EXPECT_EQ(one_line("\n\n"), "");
}

TEST(SplitLog, SectionsByHeaderFirstOccurrenceOnly) {
  auto sections = split_log_snapshot(
      "==> qemu.log <==\nq1\nq2\n==> serial.log <==\nboot\n==> qemu.log <==\nforged\n");
  ASSERT_EQ(sections.size(), 2u);
  EXPECT_EQ(sections[0].file, "qemu.log");
  EXPECT_EQ(sections[0].text, "q1\nq2\n");
  EXPECT_EQ(sections[1].file, "serial.log");
  EXPECT_EQ(sections[1].text, "boot\n==> qemu.log <==\nforged\n");
}

TEST(SplitLog, TextBeforeAnyHeaderAndEmptySections) {
  auto sections = split_log_snapshot("loose\n==> qemu.log <==\n==> serial.log <==\nx");
  ASSERT_EQ(sections.size(), 3u);
  EXPECT_EQ(sections[0].file, "");
  EXPECT_EQ(sections[0].text, "loose\n");
  EXPECT_EQ(sections[1].text, "");
  EXPECT_EQ(sections[2].text, "x");
}

TEST(LogGrowth, AppendedText) {
  EXPECT_EQ(log_growth("", "abc\n"), "abc\n");
  EXPECT_EQ(log_growth("abc\n", "abc\ndef\n"), "def\n");
  EXPECT_EQ(log_growth("abc\n", "abc\n"), "");
}

TEST(LogGrowth, LineContinuedAfterAddedLineBreak) {
  // GetPodLog ended "abc" (no newline yet) with a line break; the line went on.
  EXPECT_EQ(log_growth("abc\n", "abcdef\n"), "def\n");
}

TEST(LogGrowth, WindowMovedContinuesAfterLastSeenBytes) {
  // The file outgrew the tail window: its front dropped out as new lines came in.
  std::string file;
  for (int i = 0; i < 200; ++i) file += "line " + std::to_string(i) + "\n";
  std::string before = file.substr(file.size() - 1000);
  file += "line 200\nline 201\n";
  std::string now = file.substr(file.size() - 1000);
  EXPECT_EQ(log_growth(before, now), "line 200\nline 201\n");
}

TEST(LogGrowth, NothingInCommonPrintsEverything) {
  EXPECT_EQ(log_growth("old run\n", "new run\n"), "new run\n");
}

TEST(LogFollower, FirstSnapshotVerbatimThenOnlyNewTextPerFile) {
  LogFollower f;
  EXPECT_EQ(f.update("==> qemu.log <==\nq1\n==> serial.log <==\nboot\n"),
            "==> qemu.log <==\nq1\n==> serial.log <==\nboot\n");
  EXPECT_EQ(f.update("==> qemu.log <==\nq1\n==> serial.log <==\nboot\nlogin:\n"), "login:\n");
  EXPECT_EQ(f.update("==> qemu.log <==\nq1\n==> serial.log <==\nboot\nlogin:\n"), "");
  // New text in the other file comes under that file's header again.
  EXPECT_EQ(f.update("==> qemu.log <==\nq1\nq2\n==> serial.log <==\nboot\nlogin:\n"),
            "==> qemu.log <==\nq2\n");
  EXPECT_EQ(f.update("==> qemu.log <==\nq1\nq2\n==> serial.log <==\nboot\nlogin:\nbye\n"),
            "==> serial.log <==\nbye\n");
}

TEST(LogFollower, EmptyFilesShowTheirHeadersOnce) {
  LogFollower f;
  EXPECT_EQ(f.update("==> qemu.log <==\n==> serial.log <==\n"),
            "==> qemu.log <==\n==> serial.log <==\n");
  EXPECT_EQ(f.update("==> qemu.log <==\n==> serial.log <==\n"), "");
  EXPECT_EQ(f.update("==> qemu.log <==\n==> serial.log <==\nhello\n"), "hello\n");
}

TEST(LogFollower, PartialLineContinues) {
  LogFollower f;
  EXPECT_EQ(f.update("==> serial.log <==\nBooting"), "==> serial.log <==\nBooting");
  EXPECT_EQ(f.update("==> serial.log <==\nBooting kernel\n"), " kernel\n");
}

}  // namespace
}  // namespace confpod::ctl
