#include "daemon/ctl/format.h"

#include <algorithm>
#include <array>
#include <set>

namespace confpod::ctl {
namespace {

bool is_control(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

std::string printable(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (is_control(c)) c = '?';
  return out;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// "==> NAME <==" (without the line break) -> NAME, or "" when `line` is no header.
std::string header_name(std::string_view line) {
  constexpr std::string_view kOpen = "==> ";
  constexpr std::string_view kClose = " <==";
  if (line.size() <= kOpen.size() + kClose.size() || !starts_with(line, kOpen) ||
      line.substr(line.size() - kClose.size()) != kClose)
    return "";
  std::string_view name = line.substr(kOpen.size(), line.size() - kOpen.size() - kClose.size());
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return "";
  }
  return std::string(name);
}

}  // namespace

std::string tee_display(std::string_view tee) {
  if (tee == "none") return "none (INSECURE)";
  return printable(tee);
}

std::string format_ps_table(const std::vector<PodSummary>& pods) {
  std::vector<std::array<std::string, 3>> rows;
  rows.push_back({"NAME", "STATE", "TEE"});
  for (const auto& pod : pods)
    rows.push_back({printable(pod.name), printable(pod.state), tee_display(pod.tee)});
  std::size_t name_width = 0;
  std::size_t state_width = 0;
  for (const auto& row : rows) {
    name_width = std::max(name_width, row[0].size());
    state_width = std::max(state_width, row[1].size());
  }
  std::string out;
  for (const auto& row : rows) {
    out += row[0] + std::string(name_width - row[0].size() + 2, ' ');
    out += row[1] + std::string(state_width - row[1].size() + 2, ' ');
    out += row[2] + "\n";
  }
  return out;
}

nlohmann::json ps_json(const std::vector<PodSummary>& pods) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& pod : pods) {
    out.push_back({{"name", pod.name},
                   {"state", pod.state},
                   {"tee", pod.tee},
                   {"insecure", pod.tee == "none"},
                   {"path", pod.path}});
  }
  return out;
}

nlohmann::json inspect_json(const std::string& path, const nlohmann::json& properties) {
  nlohmann::json out = properties.is_object() ? properties : nlohmann::json::object();
  out["Path"] = path;
  auto tee = out.find("Tee");
  out["Insecure"] = tee != out.end() && tee->is_string() && tee->get<std::string>() == "none";
  return out;
}

std::string one_line(std::string_view text) {
  while (!text.empty() &&
         (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '\n' || c == '\r') {
      while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
      while (i < text.size() &&
             (text[i] == '\n' || text[i] == '\r' || text[i] == ' ' || text[i] == '\t'))
        ++i;
      out += "; ";
      continue;
    }
    out += c == '\t' ? ' ' : (is_control(c) ? '?' : c);
    ++i;
  }
  return out;
}

std::vector<LogSection> split_log_snapshot(std::string_view snapshot) {
  std::vector<LogSection> sections;
  std::set<std::string> seen;
  std::size_t pos = 0;
  while (pos < snapshot.size()) {
    std::size_t end = snapshot.find('\n', pos);
    std::size_t next = end == std::string_view::npos ? snapshot.size() : end + 1;
    std::string_view line =
        snapshot.substr(pos, (end == std::string_view::npos ? next : end) - pos);
    std::string name = end == std::string_view::npos ? "" : header_name(line);
    if (!name.empty() && seen.insert(name).second) {
      sections.push_back({name, ""});
    } else {
      if (sections.empty()) sections.push_back({"", ""});
      sections.back().text.append(snapshot.substr(pos, next - pos));
    }
    pos = next;
  }
  return sections;
}

std::string log_growth(std::string_view before, std::string_view now) {
  if (before.empty()) return std::string(now);
  if (starts_with(now, before)) return std::string(now.substr(before.size()));
  // GetPodLog ends a file that stops mid-line with a line break of its own; the line has
  // since gone on.
  if (before.back() == '\n' && starts_with(now, before.substr(0, before.size() - 1)))
    return std::string(now.substr(before.size() - 1));
  // The tail window moved: continue after the last bytes we saw. The leftmost match repeats
  // text rather than losing any when those bytes occur more than once.
  constexpr std::size_t kAnchor = 256;
  std::string_view anchor = before.substr(before.size() - std::min(before.size(), kAnchor));
  if (before.back() == '\n' && anchor.size() > 1) anchor.remove_suffix(1);
  std::size_t at = now.find(anchor);
  if (at != std::string_view::npos) {
    std::string_view rest = now.substr(at + anchor.size());
    if (before.back() == '\n' && !rest.empty() && rest.front() == '\n') rest.remove_prefix(1);
    return std::string(rest);
  }
  return std::string(now);
}

std::string LogFollower::update(std::string_view snapshot) {
  std::string out;
  for (auto& section : split_log_snapshot(snapshot)) {
    auto it = files_.find(section.file);
    std::string growth = it == files_.end() ? section.text : log_growth(it->second, section.text);
    bool first_time = it == files_.end();
    files_[section.file] = section.text;
    // A file seen for the first time prints its header even when empty, as GetPodLog does.
    if (growth.empty() && !(first_time && !section.file.empty())) continue;
    if (section.file != last_file_ || first_time) {
      if (!at_line_start_) out += '\n';
      if (!section.file.empty()) out += "==> " + section.file + " <==\n";
      last_file_ = section.file;
      at_line_start_ = true;
    }
    out += growth;
    if (!growth.empty()) at_line_start_ = growth.back() == '\n';
  }
  return out;
}

}  // namespace confpod::ctl
