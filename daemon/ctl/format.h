// What confpodctl prints for pods: the `ps` table and JSON, `inspect` JSON, one-line error
// messages and the `logs -f` follower. Pure functions of their inputs (no D-Bus), so they are
// unit-tested in format_test.cc.
#pragma once

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace confpod::ctl {

// One entry of org.confpod1.Manager.ListPods: (name, state, tee, object path).
struct PodSummary {
  std::string name;
  std::string state;
  std::string tee;
  std::string path;
};

// The TEE column: "none" is shown as "none (INSECURE)" (docs/architecture.md: every place that
// shows a pod shows tee none as insecure).
std::string tee_display(std::string_view tee);

// `ps`: a header "NAME STATE TEE" and one line per pod, columns left-aligned and separated
// by at least two spaces, in the order given. Control characters become '?', so a pod name
// can never move the cursor or forge a line.
std::string format_ps_table(const std::vector<PodSummary>& pods);

// `ps --json`: an array of {"name","state","tee","insecure","path"} in the order given.
nlohmann::json ps_json(const std::vector<PodSummary>& pods);

// `inspect`: the pod's properties (org.freedesktop.DBus.Properties.GetAll of
// org.confpod1.Pod, converted to JSON) plus "Path", the pod's object path, and "Insecure",
// true when Tee is "none".
nlohmann::json inspect_json(const std::string& path, const nlohmann::json& properties);

// `text` on one line: trailing line breaks dropped, each remaining line break (with the
// whitespace around it) becomes "; ", other control characters become '?'. D-Bus error
// messages can carry a QEMU log tail; the CLI prints them as one line.
std::string one_line(std::string_view text);

// `logs -f`: turns successive GetPodLog snapshots into the text that is new since the last
// one. A snapshot is the tail of each of the pod's log files, each after a header line
// "==> FILE <==\n" (qemu.log, then serial.log). Each file is followed on its own, so output
// growing in one file never repeats another file's text; when the new text belongs to a
// different file than the text printed last, its header is printed again first.
class LogFollower {
 public:
  // The part of `snapshot` not returned by an earlier call. The first call returns all of it.
  std::string update(std::string_view snapshot);

 private:
  std::map<std::string, std::string> files_;  // file name -> its text in the last snapshot
  std::string last_file_;                     // the file the last printed text came from
  bool at_line_start_ = true;                 // the printed text so far ends with '\n'
};

// One file's section of a GetPodLog snapshot.
struct LogSection {
  std::string file;  // "" for text before the first header
  std::string text;  // without the header line
};

// Splits a snapshot at its header lines. Only the first header naming a file counts: a guest
// that prints "==> qemu.log <==" on its serial console does not start a new section.
std::vector<LogSection> split_log_snapshot(std::string_view snapshot);

// The text at the end of `now` that was not in `before`, where both are tails of the same
// growing file: the suffix after `before` when `now` extends it; after `before`'s last bytes
// when the tail window moved on; all of `now` when they share nothing (the file was
// replaced). Tolerates the line break GetPodLog adds after a file that ends mid-line.
std::string log_growth(std::string_view before, std::string_view now);

}  // namespace confpod::ctl
