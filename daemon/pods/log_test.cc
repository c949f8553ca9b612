// The two forms of a log event: the stderr line and the journal entry's fields.
#include "daemon/pods/log.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <string>
#include <vector>

namespace confpod::pods {
namespace {

TEST(Log, JournalFieldNamesAreUpperCaseAndNeverTrusted) {
  EXPECT_EQ(journal_field_name("pod"), "POD");
  EXPECT_EQ(journal_field_name("pod_id"), "POD_ID");
  EXPECT_EQ(journal_field_name("message_id"), "MESSAGE_ID");
  EXPECT_EQ(journal_field_name("delay_ms"), "DELAY_MS");
  EXPECT_EQ(journal_field_name("a-b.c"), "A_B_C");
  // journald's own fields start with '_': ours never do, nor with a digit.
  EXPECT_EQ(journal_field_name("_PID"), "F__PID");
  EXPECT_EQ(journal_field_name("9lives"), "F_9LIVES");
  EXPECT_EQ(journal_field_name(""), "F_");
}

TEST(Log, TextIsOneLineWithQuotedValuesAndNoMessageId) {
  EXPECT_EQ(log_text("pod running", {{"pod", "web"}, {"pid", "42"}, {"message_id", "abc"}}),
            "pod running pod=web pid=42");
  EXPECT_EQ(log_text("x", {{"error", "a \"b\"\nc"}, {"empty", ""}}),
            "x error=\"a \\\"b\\\" c\" empty=\"\"");
  // An empty key leaves the field out (optional fields).
  EXPECT_EQ(log_text("x", {{"", "gone"}, {"kept", "1"}}), "x kept=1");
  EXPECT_EQ(journal_fields(6, "x", {{"", "gone"}}).size(), 3u);
}

TEST(Log, JournalEntryCarriesEveryFieldVerbatim) {
  std::vector<std::string> fields =
      journal_fields(4, "pod exited", {{"pod", "web"}, {"tee", "snp"}, {"message_id", "b95b"}});
  std::vector<std::string> expected = {"MESSAGE=pod exited pod=web tee=snp",
                                       "PRIORITY=4",
                                       "SYSLOG_IDENTIFIER=confpodd",
                                       "POD=web",
                                       "TEE=snp",
                                       "MESSAGE_ID=b95b"};
  EXPECT_EQ(fields, expected);
}

TEST(Log, JournalOnlyWhereStderrIsTheJournalStream) {
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(stderr_is_journal());
  struct stat st {};
  ASSERT_EQ(::fstat(2, &st), 0);
  const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
  EXPECT_TRUE(stderr_is_journal());
  // Inherited from a parent whose stderr was the journal, ours is not: stderr it is.
  const std::string other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  ::setenv("JOURNAL_STREAM", other.c_str(), 1);
  EXPECT_FALSE(stderr_is_journal());
  ::setenv("JOURNAL_STREAM", "garbage", 1);
  EXPECT_FALSE(stderr_is_journal());
  ::unsetenv("JOURNAL_STREAM");
}

}  // namespace
}  // namespace confpod::pods
