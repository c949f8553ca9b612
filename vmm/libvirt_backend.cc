#include "vmm/libvirt_backend.h"

#include <libvirt/virterror.h>

#include <cstdlib>

namespace confpod::vmm {
namespace {

// libvirt reports errors through a thread-local "last error"; fold it into our Error.
Error libvirt_error(const std::string& operation) {
  const char* message = virGetLastErrorMessage();
  return make_error("vmm.libvirt." + operation, message ? message : "unknown libvirt error");
}

// libvirt prints every error to stderr by default; we return them instead.
void quiet_error_handler(void*, virErrorPtr) {}

}  // namespace

std::string to_string(DomainState state) {
  switch (state) {
    case DomainState::kNoState:
      return "nostate";
    case DomainState::kRunning:
      return "running";
    case DomainState::kBlocked:
      return "blocked";
    case DomainState::kPaused:
      return "paused";
    case DomainState::kShutdown:
      return "shutdown";
    case DomainState::kShutoff:
      return "shutoff";
    case DomainState::kCrashed:
      return "crashed";
    case DomainState::kSuspended:
      return "pmsuspended";
    case DomainState::kUnknown:
      return "unknown";
  }
  return "unknown";
}

std::string LibvirtDomain::name() const {
  const char* n = virDomainGetName(handle_.get());
  return n ? n : "";
}

Status LibvirtDomain::start() {
  if (virDomainCreate(handle_.get()) < 0) return libvirt_error("start");
  return ok_status();
}

Status LibvirtDomain::destroy() {
  if (virDomainDestroy(handle_.get()) < 0) return libvirt_error("destroy");
  return ok_status();
}

Status LibvirtDomain::undefine() {
  if (virDomainUndefine(handle_.get()) < 0) return libvirt_error("undefine");
  return ok_status();
}

Status LibvirtDomain::shutdown() {
  if (virDomainShutdown(handle_.get()) < 0) return libvirt_error("shutdown");
  return ok_status();
}

Result<std::pair<int, int>> LibvirtDomain::raw_state() const {
  int state = 0;
  int reason = 0;
  if (virDomainGetState(handle_.get(), &state, &reason, 0) < 0) return libvirt_error("state");
  return std::pair<int, int>(state, reason);
}

Result<DomainState> LibvirtDomain::state() const {
  int state = 0;
  int reason = 0;
  if (virDomainGetState(handle_.get(), &state, &reason, 0) < 0) return libvirt_error("state");
  switch (state) {
    case VIR_DOMAIN_NOSTATE:
      return DomainState::kNoState;
    case VIR_DOMAIN_RUNNING:
      return DomainState::kRunning;
    case VIR_DOMAIN_BLOCKED:
      return DomainState::kBlocked;
    case VIR_DOMAIN_PAUSED:
      return DomainState::kPaused;
    case VIR_DOMAIN_SHUTDOWN:
      return DomainState::kShutdown;
    case VIR_DOMAIN_SHUTOFF:
      return DomainState::kShutoff;
    case VIR_DOMAIN_CRASHED:
      return DomainState::kCrashed;
    case VIR_DOMAIN_PMSUSPENDED:
      return DomainState::kSuspended;
    default:
      return DomainState::kUnknown;
  }
}

Result<std::string> LibvirtDomain::xml() const {
  char* raw = virDomainGetXMLDesc(handle_.get(), 0);
  if (raw == nullptr) return libvirt_error("xml");
  std::unique_ptr<char, decltype(&std::free)> owned(raw, &std::free);
  return std::string(owned.get());
}

Result<LibvirtConnection> LibvirtConnection::connect(const std::string& uri) {
  virSetErrorFunc(nullptr, quiet_error_handler);
  virConnectPtr conn = virConnectOpen(uri.c_str());
  if (conn == nullptr) return libvirt_error("connect");
  return LibvirtConnection(VirConnectHandle(conn));
}

Result<LibvirtDomain> LibvirtConnection::define(const std::string& xml) {
  virDomainPtr domain = virDomainDefineXML(conn_.get(), xml.c_str());
  if (domain == nullptr) return libvirt_error("define");
  return LibvirtDomain(VirDomainHandle(domain));
}

Result<LibvirtDomain> LibvirtConnection::lookup(const std::string& name) {
  virDomainPtr domain = virDomainLookupByName(conn_.get(), name.c_str());
  // Only "no such domain" means it is gone; a failed call says nothing about the domain.
  if (domain == nullptr)
    return libvirt_error(virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? "no_domain" : "lookup");
  return LibvirtDomain(VirDomainHandle(domain));
}

}  // namespace confpod::vmm
