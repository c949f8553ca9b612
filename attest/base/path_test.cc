#include "attest/base/path.h"

#include <gtest/gtest.h>

namespace confpod {
namespace {

TEST(NormalizedPath, AcceptsOnlyOneSpellingOfAnAbsolutePath) {
  EXPECT_EQ(normalized_path_problem("/srv/images/app.tar"), std::nullopt);
  EXPECT_EQ(normalized_path_problem("/.hidden/x"), std::nullopt);
  EXPECT_EQ(normalized_path_problem("relative/x"), "must be an absolute path");
  EXPECT_EQ(normalized_path_problem(""), "must be an absolute path");
  EXPECT_EQ(normalized_path_problem("/"), "must not be /");
  EXPECT_EQ(normalized_path_problem("/", true), std::nullopt);
  EXPECT_EQ(normalized_path_problem("/srv/"), "must not end in /");
  EXPECT_EQ(normalized_path_problem("/srv//x"), "must not contain //");
  EXPECT_EQ(normalized_path_problem("/srv/./x"), "must be normalized (no . or .. segments)");
  EXPECT_EQ(normalized_path_problem("/srv/../etc"), "must be normalized (no . or .. segments)");
  EXPECT_EQ(normalized_path_problem("/srv/.."), "must be normalized (no . or .. segments)");
}

}  // namespace
}  // namespace confpod
