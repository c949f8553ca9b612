#include "daemon/pods/exec_request.h"

#include <gtest/gtest.h>

#include "guest/protocol/init_data.h"

namespace confpod::pods {
namespace {

spec::PodSpec two_containers() {
  spec::PodSpec s;
  s.name = "web";
  spec::Container migrate;
  migrate.name = "migrate";
  migrate.init = true;
  spec::Container app;
  app.name = "app";
  s.containers = {migrate, app};
  return s;
}

store::PodRecord record() {
  store::PodRecord r;
  r.name = "web";
  return r;
}

TEST(ResolveContainer, NamedEmptyAndUnknown) {
  auto spec = std::optional<spec::PodSpec>(two_containers());
  EXPECT_EQ(*resolve_container(record(), spec, "migrate", false), "migrate");
  EXPECT_EQ(*resolve_container(record(), spec, "", false), "app")
      << "exec without a name goes to the first container that is not an init container";
  EXPECT_EQ(*resolve_container(record(), spec, "", true), "") << "attach: all containers";
  auto unknown = resolve_container(record(), spec, std::string("db\xff", 3), false);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, "pods.no_container");
  EXPECT_NE(unknown.error().message.find("\"db\xef\xbf\xbd\""), std::string::npos)
      << unknown.error().message;
  auto long_name = resolve_container(record(), spec, std::string(1000, 'x'), false);
  ASSERT_FALSE(long_name.ok());
  EXPECT_LT(long_name.error().message.size(), 200u) << "the caller's name is cut";
  auto unparsed = resolve_container(record(), std::nullopt, "app", false);
  ASSERT_FALSE(unparsed.ok());
  EXPECT_EQ(unparsed.error().code, "pods.invalid_state");
}

TEST(CheckExecCommand, TheGuestsBoundsAreCheckedHere) {
  EXPECT_TRUE(check_exec_command({"/bin/sh", "-c", "id"}).ok());
  auto code = [](const std::vector<std::string>& c) {
    auto s = check_exec_command(c);
    return s.ok() ? std::string("ok") : s.error().code + ": " + s.error().message;
  };
  EXPECT_EQ(code({}), "pods.invalid_exec: the command is empty");
  EXPECT_EQ(code(std::vector<std::string>(guest::kMaxInitArgs, "a")), "ok");
  EXPECT_NE(code(std::vector<std::string>(guest::kMaxInitArgs + 1, "a")).find("more than"),
            std::string::npos);
  EXPECT_EQ(code({std::string(guest::kMaxInitStringBytes, 'a')}), "ok");
  EXPECT_NE(code({std::string(guest::kMaxInitStringBytes + 1, 'a')}).find("longer than"),
            std::string::npos);
  EXPECT_NE(code({"echo", std::string("a\0b", 3)}).find("NUL"), std::string::npos);
}

}  // namespace
}  // namespace confpod::pods
