// Daemon logging (docs/operations.md). Under systemd, where stderr is the journal's stream
// ($JOURNAL_STREAM names its device and inode), each event goes to journald natively: MESSAGE
// is the line below, PRIORITY its level, and every field becomes a journal field of its own,
// upper-cased (pod -> POD, pod_id -> POD_ID, tee -> TEE), so `journalctl -u confpod POD=web`
// selects one pod; "message_id" becomes MESSAGE_ID (lifecycle events, log_ids.h). Elsewhere
// (a terminal, a test, a pipe) one line per event on stderr, prefixed with the syslog priority
// the way journald reads it, key=value fields after the message:
//
//   log_info("pod started", {{"pod", name}, {"pid", std::to_string(pid)}});
//   -> <6>pod started pod=web pid=1234
//
// A field with an empty key is left out of both forms: {cond ? "reason" : "", value} logs an
// optional field. Stateless: the journal check is a getenv and an fstat per event.
#pragma once

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace confpod::pods {

using LogField = std::pair<std::string_view, std::string_view>;

inline constexpr std::string_view kMessageIdField = "message_id";

// "pod_id" -> "POD_ID": journal field names are upper-case letters, digits and '_', and must
// not start with '_' (those are journald's own, trusted fields) or a digit.
inline std::string journal_field_name(std::string_view key) {
  std::string name = "F_";
  for (char c : key) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    name += (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ? c : '_';
  }
  // Keep the "F_" only where the key would otherwise be empty or start badly.
  if (name.size() > 2 && name[2] >= 'A' && name[2] <= 'Z') name.erase(0, 2);
  return name;
}

// The text of one event: the message, then key=value for each field but message_id, quoted
// where needed, control characters replaced so that one event is one line.
inline std::string log_text(std::string_view message, std::initializer_list<LogField> fields) {
  std::string line(message);
  for (const auto& [key, value] : fields) {
    if (key.empty() || key == kMessageIdField) continue;
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
  return line;
}

// stderr is connected to journald (systemd sets $JOURNAL_STREAM to "<device>:<inode>").
inline bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long device = 0, inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
  struct stat st {};
  return ::fstat(2, &st) == 0 && st.st_dev == device && st.st_ino == inode;
}

// The journal entry's fields ("NAME=value"), MESSAGE first.
inline std::vector<std::string> journal_fields(int priority, std::string_view message,
                                               std::initializer_list<LogField> fields) {
  std::vector<std::string> out;
  out.reserve(fields.size() + 3);
  out.push_back("MESSAGE=" + log_text(message, fields));
  out.push_back("PRIORITY=" + std::to_string(priority));
  out.push_back("SYSLOG_IDENTIFIER=confpodd");
  for (const auto& [key, value] : fields) {
    if (key.empty()) continue;
    std::string entry = journal_field_name(key);
    entry += '=';
    entry.append(value);
    out.push_back(std::move(entry));
  }
  return out;
}

inline void log_event(int priority, std::string_view message,
                      std::initializer_list<LogField> fields) {
  if (stderr_is_journal()) {
    std::vector<std::string> entries = journal_fields(priority, message, fields);
    std::vector<iovec> iov;
    iov.reserve(entries.size());
    for (std::string& e : entries) iov.push_back({e.data(), e.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) >= 0) return;
    // journald went away: the stream below still reaches whoever reads stderr.
  }
  std::string line = "<" + std::to_string(priority) + ">" + log_text(message, fields) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

inline void log_info(std::string_view message, std::initializer_list<LogField> fields = {}) {
  log_event(6, message, fields);  // LOG_INFO
}
inline void log_warning(std::string_view message, std::initializer_list<LogField> fields = {}) {
  log_event(4, message, fields);  // LOG_WARNING
}
inline void log_error(std::string_view message, std::initializer_list<LogField> fields = {}) {
  log_event(3, message, fields);  // LOG_ERR
}

}  // namespace confpod::pods
