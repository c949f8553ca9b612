#include "tests/support/fixtures.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace confpod::testing {

std::string fixture_path(const std::string& relative) {
  const char* dir = std::getenv("CONFPOD_FIXTURES_DIR");
  std::string base = dir && *dir ? dir : CONFPOD_FIXTURES_DIR;
  return base + "/" + relative;
}

Bytes read_fixture(const std::string& relative) {
  auto bytes = read_file(fixture_path(relative));
  if (!bytes.ok()) {
    ADD_FAILURE() << "fixture missing: " << bytes.error().describe();
    return {};
  }
  return std::move(bytes).value();
}

std::string read_fixture_text(const std::string& relative) {
  auto text = read_text_file(fixture_path(relative));
  if (!text.ok()) {
    ADD_FAILURE() << "fixture missing: " << text.error().describe();
    return {};
  }
  return std::move(text).value();
}

}  // namespace confpod::testing
