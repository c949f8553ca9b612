// Exec sessions: a command the host asks to run in a running container, allowed only when
// the verified init-data says so (allow_exec), bounded in number, each with its stdin queue.
#include <signal.h>

#include "guest/agent/agent_impl.h"
#include "guest/agent/log.h"

namespace confpod::guest::agent {

void Agent::Impl::handle_exec(const HostMessage& message) {
  GuestMessage r;
  r.kind = GuestMessage::Kind::kResponse;
  r.id = message.id;
  r.ok = false;
  if (!init.allow_exec) {
    r.detail = "exec is not allowed by init-data";
    log("refused exec into " + printable(message.container) + ": not allowed by init-data");
    send(r);
    return;
  }
  if (stopping) {
    r.detail = "the pod is stopping";
    send(r);
    return;
  }
  const PodContainer* target = nullptr;
  for (const auto& pc : containers)
    if (pc.name == message.container && pc.running) target = &pc;
  if (target == nullptr) {
    r.detail = "no running container named \"" + printable(message.container) + "\"";
    send(r);
    return;
  }
  std::size_t execs = 0;
  for (const auto& [pid, c] : children) {
    execs += c.is_exec ? 1 : 0;
    if (c.is_exec && c.exec_id == message.id) {
      r.detail = "exec id " + std::to_string(message.id) + " is in use";
      send(r);
      return;
    }
  }
  if (execs >= kMaxExecs) {
    r.detail = "already " + std::to_string(kMaxExecs) + " execs running";
    send(r);
    return;
  }
  ExecRequest request;
  request.argv = message.command;
  request.env = target->env;
  request.workdir = target->workdir;
  request.user = target->user;
  request.confinement = target->confinement();
  request.tty = message.tty;
  request.rows = message.rows;
  request.cols = message.cols;
  request.stdin_open = message.stdin_open;
  auto p = exec_in_container(target->pid, request);
  if (!p.ok()) {
    r.detail = p.error().describe();
    send(r);
    return;
  }
  log("exec " + std::to_string(message.id) + " in " + target->name + (message.tty ? " (pty)" : ""));
  Child child;
  child.is_exec = true;
  child.container = target->name;
  child.exec_id = message.id;
  child.out = std::move(p->stdout_fd);
  child.err = std::move(p->stderr_fd);
  child.pty = p->pty;
  if (message.stdin_open || message.tty) child.in = ExecInput(std::move(p->stdin_fd), p->pty);
  children.emplace(p->pid, std::move(child));
  r.ok = true;
  r.detail = "started";
  send(r);
}

std::pair<pid_t, Child*> Agent::Impl::find_exec(std::uint64_t id) {
  for (auto& [pid, c] : children)
    if (c.is_exec && c.exec_id == id) return {pid, &c};
  return {-1, nullptr};
}

// exec-input, exec-resize, exec-close: only for an exec the agent started (which init-data
// allowed); anything else is logged and dropped.
void Agent::Impl::handle_exec_control(const HostMessage& message) {
  auto [pid, c] = find_exec(message.id);
  if (c == nullptr) {
    log("ignored a request for exec " + std::to_string(message.id) + ": no such exec");
    return;
  }
  switch (message.kind) {
    case HostMessage::Kind::kExecInput:
      if (!c->in.add(message.data, message.eof)) {
        log("exec " + std::to_string(message.id) + ": more than " +
            std::to_string(ExecInput::kMaxPending) + " bytes of unread input; ending it");
        ::kill(pid, SIGKILL);
      }
      return;
    case HostMessage::Kind::kExecResize:
      if (c->pty) (void)set_window_size(c->out.get(), message.rows, message.cols);
      return;
    case HostMessage::Kind::kExecClose:
      log("exec " + std::to_string(message.id) + " closed by the host");
      ::kill(pid, SIGKILL);
      return;
    default:
      return;
  }
}

}  // namespace confpod::guest::agent
