// Access to the real attestation fixtures in ../shared/fixtures (never copied into the repo).
#pragma once

#include <string>

#include "attest/base/bytes.h"

namespace confpod::testing {

// Absolute path of a fixture, e.g. fixture_path("snp/virtee_report_milan.bin").
// The directory comes from $CONFPOD_FIXTURES_DIR, else the CMake-configured default.
std::string fixture_path(const std::string& relative);

// Reads a fixture; a missing fixture fails the calling test (ADD_FAILURE) and returns {}.
Bytes read_fixture(const std::string& relative);
std::string read_fixture_text(const std::string& relative);

}  // namespace confpod::testing
