// RFC 3339 timestamps as Unix seconds: verification time is always an explicit input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "attest/base/result.h"

namespace confpod {

using UnixSeconds = std::int64_t;

// Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" (also a space or lower-case t as the
// separator). Fractions are truncated. Error code "time.invalid".
Result<UnixSeconds> parse_rfc3339(std::string_view text);

// "YYYY-MM-DDTHH:MM:SSZ".
std::string format_rfc3339(UnixSeconds t);

// Seconds since the epoch of a UTC calendar date and time (proleptic Gregorian; no range
// checks: callers validate fields).
UnixSeconds unix_from_utc(std::int64_t year, unsigned month, unsigned day, int hour, int minute,
                          int second);

// Wall clock, for the daemon only: verifiers take the time as a parameter.
UnixSeconds now_unix();

}  // namespace confpod
