// Daemon logging: one line per event on stderr, prefixed with the syslog priority the way
// journald reads it (sd-daemon.h "<N>" prefixes), key=value fields after a message.
//
//   log_info("pod started", {{"pod", name}, {"pid", std::to_string(pid)}});
//   -> <6>pod started pod=web pid=1234
#pragma once

#include <systemd/sd-daemon.h>

#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace confpod::pods {

using LogField = std::pair<std::string_view, std::string_view>;

inline void log_line(const char* prefix, std::string_view message,
                     std::initializer_list<LogField> fields) {
  std::string line = prefix;
  line.append(message);
  for (const auto& [key, value] : fields) {
    line += ' ';
    line.append(key);
    line += '=';
    bool quote = value.empty() || value.find_first_of(" \"=") != std::string_view::npos;
    if (quote) line += '"';
    for (char c : value) {
      if (c == '"' || c == '\\') line += '\\';
      if (static_cast<unsigned char>(c) < 0x20) {
        line += ' ';
        continue;
      }
      line += c;
    }
    if (quote) line += '"';
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

inline void log_info(std::string_view message, std::initializer_list<LogField> fields = {}) {
  log_line(SD_INFO, message, fields);
}
inline void log_warning(std::string_view message, std::initializer_list<LogField> fields = {}) {
  log_line(SD_WARNING, message, fields);
}
inline void log_error(std::string_view message, std::initializer_list<LogField> fields = {}) {
  log_line(SD_ERR, message, fields);
}

}  // namespace confpod::pods
